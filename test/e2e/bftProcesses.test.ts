/**
 * Validators as processes (`topai node start --config FILE`) on
 * localhost, reaching each other over the WebSocket consensus network:
 * transfers sent with the typed client to different validators commit on
 * all; kill -9 one and the chain goes on; kill -9 a second and it halts
 * safely (no height moves, no two blocks at one height anywhere); restart
 * both and it resumes, every validator holding the same block at every
 * height, and `topai audit replay` passes on each one's data dir.
 */
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { GenesisConfig, genesisConfigHash } from "../../domain/chain/genesis.js"
import { devValidators } from "../../domain/chain/validators.js"
import { DEVNET_GOVERNANCE } from "../../domain/chain/genesis.js"
import { defaultEconomics, EconomicsConfig } from "../../domain/economics/config.js"
import { loadValidatorConfig, writeLocalValidatorConfigs } from "../../src/cli/commands/validator.js"
import { DEV, DEVNET_CHAIN_ID, devPair, GENESIS_BALANCE, signTransfer, TRANSFER_SHARDS, waitFor } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, expectUserError, freePort, makeTempDir, runCli, spawnNode, wsUrl } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

/** Four seats, quorum 3: one down goes on (the 2-chain commit needs three live leaders in a row), two down halt. */
const N = 4
const SHARDS = [0, ...Array.from({ length: TRANSFER_SHARDS }, (_, i) => i + 1)]

afterAll(cleanup)

const log = (line: string) => console.log(`[bft processes ${new Date().toISOString().slice(11, 23)}] ${line}`)

describe("topai node configs / node start --config, offline", () => {
  it("writes a devnet's genesis and validator configs that load; a config with another validator's key is refused in one line", async () => {
    const dir = join(makeTempDir("bft-configs"), "net")
    const r = await runCli(["node", "configs", "--dir", dir, "--validators", "4", "--candidates", "1", "--rpc-port", "18645", "--consensus-port", "19645"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`topai node start --config ${join(dir, "validator-3.json")}`)
    const loaded = await Effect.runPromise(loadValidatorConfig(join(dir, "validator-2.json")))
    const pinned = genesisConfigHash(loaded.genesis)
    expect(r.stdout).toContain(`Genesis hash ${pinned}: audit a node's data dir with \`topai audit replay --data-dir D --genesis-hash ${pinned}\``)
    expect(loaded.config.peers.map((p) => p.url)).toEqual([0, 1, 3, 4].map((j) => `ws://127.0.0.1:${19645 + j}/consensus`))
    expect(loaded.genesis.validators).toHaveLength(4)
    // The candidate: not a genesis validator, on the network as node 4 of every roster.
    const candidate = await Effect.runPromise(loadValidatorConfig(join(dir, "validator-4.json")))
    expect(candidate.roster).toHaveLength(5)
    expect(candidate.roster.slice(0, 4)).toEqual(candidate.genesis.validators!.map((v) => v.address))
    expect(candidate.roster[4]).toBe(candidate.secp.publicKey.address)
    expect(loaded.roster).toEqual(candidate.roster)
    const wrong = JSON.parse(readFileSync(join(dir, "validator-0.json"), "utf8")) as Record<string, unknown>
    writeFileSync(join(dir, "wrong.json"), JSON.stringify({ ...wrong, keyFile: "validator-1.key.json" }))
    const refused = await runCli(["node", "start", "--config", join(dir, "wrong.json")])
    expectUserError(["node", "start", "--config"], refused, /^error: the secp256k1 key's address 0x[0-9a-f]{40} is not validator 0's/)
    // Key files are 0600, and refused once group or others can read them.
    for (let i = 0; i < 5; i++) expect(statSync(join(dir, `validator-${i}.key.json`)).mode & 0o777).toBe(0o600)
    chmodSync(join(dir, "validator-3.key.json"), 0o644)
    const shared = await runCli(["node", "start", "--config", join(dir, "validator-3.json")])
    expectUserError(["node", "start", "--config"], shared, /^error: key file \S+validator-3\.key\.json has mode 0644: group or others can use it; run `chmod 600/)
  })
})

describe(`${N} validator processes over the WebSocket consensus network`, () => {
  it("commit transfers, survive one kill -9, halt safely at two, resume with no fork", async () => {
    const t0 = performance.now()
    const since = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`
    const root = makeTempDir("bft-processes")
    const rpcPorts: Array<number> = []
    const consensusPorts: Array<number> = []
    for (let i = 0; i < N; i++) {
      rpcPorts.push(await freePort())
      consensusPorts.push(await freePort())
    }
    const base = new GenesisConfig({
      chainId: DEVNET_CHAIN_ID,
      transferShards: TRANSFER_SHARDS,
      timestamp: Date.now(),
      validators: devValidators(N)
    })
    const genesis = new GenesisConfig({
      ...base,
      economics: new EconomicsConfig({ ...defaultEconomics(DEVNET_GOVERNANCE), beaconIntervalMs: 1_000 })
    })
    const configs = writeLocalValidatorConfigs({ dir: root, genesis, rpcPorts, consensusPorts, idleIntervalMs: 1_000, baseTimeoutMs: 1_500 })
    const dataDir = (i: number) => join(root, `validator-${i}`)
    const nodes: Array<NodeProcess | undefined> = []
    const clients: Array<TestClient | undefined> = []
    const start = async (i: number) => {
      nodes[i] = await spawnNode({
        dataDir: dataDir(i),
        port: rpcPorts[i],
        command: ["node", "start", "--config", configs[i]!],
        readyTimeoutMs: 40_000
      })
      clients[i] = await openClient(wsUrl(rpcPorts[i]!))
    }
    const kill = async (i: number) => {
      await clients[i]?.close()
      clients[i] = undefined
      await nodes[i]!.stop("SIGKILL")
      nodes[i] = undefined
    }
    const live = () => clients.flatMap((c, i) => (c === undefined ? [] : [{ i, c }]))
    const heights = async (i: number) => {
      const c = clients[i]!
      const status = await c.run(c.client.node.status())
      return SHARDS.map((s) => status.shards.find((x) => x.shard === s)!.height)
    }
    const allHeights = async () => Promise.all(live().map(({ i }) => heights(i)))

    try {
      await Promise.all(Array.from({ length: N }, (_, i) => start(i)))
      log(`${N} validators ready at ${since()}`)

      // Transfers through different validators commit on all.
      const [a, b] = devPair(true)
      // A cross-shard pair of two other accounts.
      const c = DEV.find((x) => x.shard !== a.shard)!
      const d = DEV.find((x) => x.shard === a.shard && x !== a && x !== b)!
      const t1 = signTransfer({ key: a.key, to: b.address, amount: 1_000n, nonce: 0n })
      const t2 = signTransfer({ key: c.key, to: d.address, amount: 2_000n, nonce: 0n })
      const submitted = performance.now()
      const [r1, r2] = await Promise.all([
        clients[0]!.run(clients[0]!.client.tx.submit({ raw: t1.raw, wait: true }), 30_000),
        clients[2]!.run(clients[2]!.client.tx.submit({ raw: t2.raw, wait: true }), 30_000)
      ])
      expect([r1.status, r2.status]).toEqual(["included", "included"])
      log(`2 transfers included in ${Math.round(performance.now() - submitted)} ms (at ${since()})`)
      const expectBalances = async (bBalance: bigint, dBalance: bigint) => {
        for (const { c: client } of live()) {
          await waitFor(
            "the credits on every live validator",
            async () => {
              const [bb, db] = await Promise.all([
                client.run(client.client.account.get({ address: b.address })),
                client.run(client.client.account.get({ address: d.address }))
              ])
              return bb.balance === bBalance && db.balance === dBalance ? true : undefined
            },
            { timeoutMs: 20_000 }
          )
        }
      }
      await expectBalances(GENESIS_BALANCE + 1_000n, GENESIS_BALANCE + 2_000n)
      log(`balances equal on all ${N} at ${since()}`)

      // kill -9 one: the chain goes on.
      await kill(3)
      const afterOne = await allHeights()
      const t3 = signTransfer({ key: a.key, to: b.address, amount: 3_000n, nonce: 1n })
      const killOneAt = performance.now()
      const r3 = await clients[1]!.run(clients[1]!.client.tx.submit({ raw: t3.raw, wait: true }), 30_000)
      expect(r3.status).toBe("included")
      log(`validator 3 killed; a transfer via validator 1 included ${Math.round(performance.now() - killOneAt)} ms later (at ${since()})`)
      await waitFor(
        "new commits on every shard with one validator down",
        async () => {
          const hs = await allHeights()
          return hs.every((h, k) => h.every((x, s) => x > afterOne[k]![s]!)) ? true : undefined
        },
        { timeoutMs: 20_000 }
      )
      await expectBalances(GENESIS_BALANCE + 4_000n, GENESIS_BALANCE + 2_000n)
      log(`every shard committed new blocks with ${N - 1} of ${N} (at ${since()})`)

      // kill -9 a second: the chain halts (no quorum), safely.
      await kill(2)
      await new Promise((r) => setTimeout(r, 1_500)) // a commit already certified may still land
      const halted = await allHeights()
      const t4 = signTransfer({ key: a.key, to: b.address, amount: 4_000n, nonce: 2n })
      const r4 = await clients[0]!.run(clients[0]!.client.tx.submit({ raw: t4.raw, wait: false }))
      expect(r4.status).toBe("pending")
      await new Promise((r) => setTimeout(r, 4_000))
      expect(await allHeights()).toEqual(halted)
      log(`validators 2 and 3 down: heights stayed at ${JSON.stringify(halted[0])} for 4 s (at ${since()})`)

      // Restart both: the chain resumes.
      const restartAt = performance.now()
      await Promise.all([start(2), start(3)])
      log(`validators 2 and 3 restarted in ${Math.round(performance.now() - restartAt)} ms (at ${since()})`)
      await waitFor(
        "the chain resumes: new commits on every shard of every validator",
        async () => {
          const hs = await allHeights()
          return hs.every((h) => h.every((x, s) => x > halted[0]![s]! + 1)) ? true : undefined
        },
        { timeoutMs: 40_000 }
      )
      log(`resumed ${Math.round(performance.now() - restartAt)} ms after the restart (at ${since()})`)
      const t5 = signTransfer({ key: c.key, to: d.address, amount: 5_000n, nonce: 1n })
      const r5 = await clients[3]!.run(clients[3]!.client.tx.submit({ raw: t5.raw, wait: true }), 30_000)
      expect(r5.status).toBe("included")
      // The transfer sent while halted was kept by validator 0's pool and committed too.
      await expectBalances(GENESIS_BALANCE + 8_000n, GENESIS_BALANCE + 7_000n)
      log(`transfers after the restart included; balances equal on all ${N} (at ${since()})`)

      // No fork: the same block at every height of every shard on every validator.
      const top = (await allHeights()).reduce((m, h) => h.map((x, s) => Math.min(x, m[s]!)))
      for (const [s, shard] of SHARDS.entries()) {
        for (let height = 1; height <= top[s]!; height++) {
          const hashes = await Promise.all(
            live().map(({ c: client }) => client.run(client.client.block.get({ shard, height })).then((blk) => blk.hash))
          )
          expect(new Set(hashes).size, `shard ${shard} height ${height}: ${hashes.join(" ")}`).toBe(1)
        }
      }
      log(`block hashes agree at heights 1..${JSON.stringify(top)} of shards ${SHARDS.join(",")} (at ${since()})`)
    } catch (error) {
      for (const [i, node] of nodes.entries()) {
        if (node !== undefined) console.log(`--- validator ${i}'s last output:\n${node.output().split("\n").slice(-25).join("\n")}`)
      }
      throw error
    } finally {
      for (const client of clients) await client?.close()
      for (const node of nodes) if (node !== undefined) await node.stop()
    }

    log(`all ${N} stopped at ${since()}`)
    const audits = []
    for (let i = 0; i < N; i += 2) {
      audits.push(
        ...(await Promise.all(
          [i, i + 1].filter((k) => k < N).map((k) => runCli(auditArgs(dataDir(k)), { timeoutMs: 60_000 }))
        ))
      )
    }
    for (const audit of audits) expect(audit.code, audit.stdout + audit.stderr).toBe(0)
    log(`audit replay passed on all ${N} data dirs (at ${since()})`)
  }, 240_000)
})
