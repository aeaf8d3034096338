/**
 * `topai` as a user meets it: real CLI processes against one running devnet
 * node (shared by the tests of this file). Help everywhere; keys; JSON that
 * parses and agrees with the typed client; and for every bad input a single
 * readable `error: ...` line on stderr with exit code 1 — never a stack
 * trace, never a hang.
 *
 * Each CLI process costs ~1.5–2 s of CPU to start here (loading Effect's ESM
 * modules), so they run two at a time and there are only as many as the
 * checks need.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Either } from "effect"
import { hexToBytes } from "../../domain/chain/hex.js"
import { PrivateKey } from "../../domain/chain/keys.js"
import { DEV, DEVNET_CHAIN_ID, GENESIS_BALANCE, devPair } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { cleanup, freePort, makeTempDir, runCli, spawnNode } from "./support/processes.js"
import type { CliResult, NodeProcess } from "./support/processes.js"

/** CLI processes run at once (2 cores, shared). */
const CLI_CONCURRENCY = 2
/** A node that is down must be reported this fast (the CLI's own call timeout is 30 s). */
const NODE_DOWN_REPORTED_MS_MAX = 10_000

let node: NodeProcess
let c: TestClient
let rpc: ReadonlyArray<string>

/** Run CLI invocations, at most CLI_CONCURRENCY at a time, results in order. */
const runAll = async (invocations: ReadonlyArray<ReadonlyArray<string>>): Promise<ReadonlyArray<CliResult>> => {
  const results: Array<CliResult> = []
  let next = 0
  const worker = async () => {
    while (next < invocations.length) {
      const i = next++
      results[i] = await runCli(invocations[i]!)
    }
  }
  await Promise.all(Array.from({ length: CLI_CONCURRENCY }, worker))
  return results
}

const hexKey = (key: PrivateKey) => "0x" + Buffer.from(key.exportBytes()).toString("hex")

const expectNoStackTrace = (r: CliResult) => {
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr).not.toMatch(/\.ts:\d+/)
}

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("cli") })
  c = await openClient(node.url)
  rpc = ["--rpc", node.url]
})

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("topai CLI", () => {
  it("--help of topai and of every command: exit 0, usage and description", async () => {
    const commands: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [[], /TOP AI Network node and tools/],
      [["node", "start"], /Run a one-process devnet node/],
      [["key", "new"], /Make a new secp256k1 key/],
      [["key", "dev"], /Show deterministic dev account N/],
      [["status"], /Show the node's chain id and each shard's height/],
      [["balance"], /Show an account's balance, nonce and shard/],
      [["transfer"], /Send base units to an address/],
      [["block"], /Show one block of one shard/],
      [["audit", "replay"], /Offline: check every hash chain/]
    ]
    const results = await runAll(commands.map(([args]) => [...args, "--help"]))
    results.forEach((r, i) => {
      const [args, description] = commands[i]!
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" })
      expect(r.stdout).toMatch(/USAGE/)
      expect(r.stdout).toMatch(/DESCRIPTION/)
      expect(r.stdout).toMatch(description)
      expect(r.stdout).not.toMatch(/\u001b\[/) // runCli strips ANSI; nothing left over
    })
    // The top-level help lists every command.
    for (const command of ["node start", "key new", "key dev", "status", "balance", "transfer", "block", "audit replay"]) {
      expect(results[0]!.stdout).toContain(`- ${command}`)
    }
  })

  it("key new --json: a valid secp256k1 key with its address, fresh every time; key dev 0 --json: the genesis account", async () => {
    const [k1, k2, d0] = await runAll([
      ["key", "new", "--json"],
      ["key", "new", "--json"],
      ["key", "dev", "0", "--json"]
    ])
    const keys = [k1!, k2!].map((r) => {
      expect(r.code).toBe(0)
      const k = JSON.parse(r.stdout) as { privateKey: string; publicKey: string; address: string }
      expect(k.privateKey).toMatch(/^0x[0-9a-f]{64}$/)
      expect(k.publicKey).toMatch(/^0x0[23][0-9a-f]{64}$/)
      expect(k.address).toMatch(/^0x[0-9a-f]{40}$/)
      const key = Either.getOrThrow(PrivateKey.fromBytes(Either.getOrThrow(hexToBytes(k.privateKey, 32))))
      expect(key.publicKey.address).toBe(k.address)
      expect(key.publicKey.hex).toBe(k.publicKey)
      return k
    })
    expect(keys[0]!.privateKey).not.toBe(keys[1]!.privateKey)
    expect(keys[0]!.address).not.toBe(keys[1]!.address)

    expect(d0!.code).toBe(0)
    const dev = JSON.parse(d0!.stdout) as { index: number; privateKey: string; address: string }
    // Deterministic: the same as the devnet's genesis account 0, computed here in another process.
    expect(dev).toMatchObject({ index: 0, privateKey: hexKey(DEV[0]!.key), address: DEV[0]!.address })
  })

  it("status, balance, transfer and block with --json: parse, and agree with the typed client", async () => {
    const [from, to] = devPair(false)
    const [status, balance] = await runAll([
      ["status", ...rpc, "--json"],
      ["balance", from.address, ...rpc, "--json"]
    ])
    expect(status!.code).toBe(0)
    const s = JSON.parse(status!.stdout) as { chainId: string; shards: Array<{ shard: number; kind: string }> }
    expect(s.chainId).toBe(String(DEVNET_CHAIN_ID))
    expect(s.shards.map((x) => [x.shard, x.kind])).toEqual([
      [0, "beacon"],
      [1, "transfer"],
      [2, "transfer"]
    ])
    expect(balance!.code).toBe(0)
    expect(JSON.parse(balance!.stdout)).toEqual({
      address: from.address,
      shard: from.shard,
      balance: String(GENESIS_BALANCE),
      nonce: "0",
      pendingNonce: "0"
    })

    const transfer = await runCli(["transfer", "--key", hexKey(from.key), "--to", to.address, "--amount", "1_000", ...rpc, "--json"])
    expect(transfer.code).toBe(0)
    const t = JSON.parse(transfer.stdout) as { hash: string; shard: number; status: string; blockHeight: number }
    expect(t).toMatchObject({ shard: from.shard, status: "included" })
    const view = await c.run(c.client.tx.get({ hash: t.hash }))
    expect([view.from, view.to, view.amount, view.blockHeight]).toEqual([from.address, to.address, 1_000n, t.blockHeight])

    const block = await runCli(["block", String(from.shard), String(t.blockHeight), ...rpc, "--json"])
    expect(block.code).toBe(0)
    const b = JSON.parse(block.stdout) as { shard: number; height: number; hash: string; transactions: Array<string> }
    const typed = await c.run(c.client.block.get({ shard: from.shard, height: t.blockHeight }))
    expect(b).toMatchObject({ shard: from.shard, height: t.blockHeight, hash: typed.hash, transactions: [t.hash] })
  })

  it("bad input: one `error: ...` line on stderr, exit code 1, no stack trace, nothing on stdout", async () => {
    const [from, to] = devPair(true)
    const key = hexKey(from.key)
    const nonceBefore = (await c.run(c.client.account.get({ address: from.address }))).nonce
    const downPort = await freePort() // nothing listens there
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["balance", "nothex", ...rpc], /^error: invalid request: not an address .*nothex$/],
      [["transfer", "--key", "zz", "--to", to.address, "--amount", "5", ...rpc], /^error: --key must be 32 bytes of hex/],
      [["transfer", "--key", key, "--to", to.address, "--amount", "-5", ...rpc], /^error: --amount must be a whole number of base units, got "-5"$/],
      [["transfer", "--key", key, "--to", to.address, "--amount", "0", ...rpc], /^error: --amount must be more than 0$/],
      [["block", "1", "999", ...rpc], /^error: block 1\/999 not found$/],
      [["status", "--rpc", `ws://127.0.0.1:${downPort}/ws`], /^error: cannot reach the node at .*ECONNREFUSED/],
      [["audit", "replay", "--data-dir", "/nonexistent"], /^error: no event store at \/nonexistent\/events.db$/]
    ]
    const results = await runAll(cases.map(([args]) => args))
    cases.forEach(([args, message], i) => {
      const r = results[i]!
      expect({ args, code: r.code, timedOut: r.timedOut, stdout: r.stdout }).toEqual({ args, code: 1, timedOut: false, stdout: "" })
      const lines = r.stderr.trimEnd().split("\n")
      expect({ args, lines }).toEqual({ args, lines: [expect.stringMatching(message)] })
      expectNoStackTrace(r)
    })
    // A node that is down is reported at once, not after the 30 s call timeout.
    expect(results[5]!.ms).toBeLessThan(NODE_DOWN_REPORTED_MS_MAX)
    // None of it reached the chain.
    expect((await c.run(c.client.account.get({ address: from.address }))).nonce).toBe(nonceBefore)
  })
})
