/**
 * `topai` against a running devnet node (one, shared by the tests of this
 * file), as a user meets it: keys, `--json` output that parses and agrees
 * with the typed client, a transfer, and errors the node reports — each a
 * single readable `error: ...` line with exit code 1, never a stack trace.
 * Help and the errors that need no node are in cli-offline.test.ts.
 *
 * Each CLI process costs ~2 s of CPU to start here, so there are only as
 * many as the checks need, two at a time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Either } from "effect"
import { hexToBytes } from "../../domain/chain/hex.js"
import { PrivateKey } from "../../domain/chain/keys.js"
import { DEV, DEVNET_CHAIN_ID, GENESIS_BALANCE, devPair } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { cleanup, expectUserError, makeTempDir, runCli, runCliAll, spawnNode, hexKey } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

let node: NodeProcess
let c: TestClient
let rpc: ReadonlyArray<string>


beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("cli") })
  c = await openClient(node.url)
  rpc = ["--rpc", node.url]
})

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("topai CLI with a node", () => {
  it("key new --json: a valid secp256k1 key with its address, fresh every time; key dev 0 --json: the genesis account", async () => {
    const [k1, k2, d0] = await runCliAll([
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
    const [status, balance] = await runCliAll([
      ["status", ...rpc, "--json"],
      ["balance", from.address, ...rpc, "--json"]
    ])
    expect(status!.code).toBe(0)
    const s = JSON.parse(status!.stdout) as { chainId: string; shards: Array<{ shard: number; kind: string }> }
    expect(s.chainId).toBe(String(DEVNET_CHAIN_ID))
    expect(s.shards.map((x) => [x.shard, x.kind])).toEqual([
      [0, "beacon"],
      [1, "transfer"],
      [2, "transfer"],
      [3, "ai"]
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

  it("errors the node reports: one `error: ...` line on stderr, exit code 1, nothing reaches the chain", async () => {
    const [from, to] = devPair(true)
    const nonceBefore = (await c.run(c.client.account.get({ address: from.address }))).nonce
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["balance", "nothex", ...rpc], /^error: invalid request: not an address .*nothex$/],
      [["block", "1", "999", ...rpc], /^error: block 1\/999 not found$/],
      [["transfer", "--key", hexKey(from.key), "--to", to.address, "--amount", "5", "--nonce", "7", ...rpc], /^error: transaction rejected \(NonceGap\): nonce 7 leaves a gap/]
    ]
    const results = await runCliAll(cases.map(([args]) => args))
    cases.forEach(([args, message], i) => expectUserError(args, results[i]!, message))
    expect((await c.run(c.client.account.get({ address: from.address }))).nonce).toBe(nonceBefore)
  })
})
