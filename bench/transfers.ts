/**
 * End-to-end signed transfers per second on one node, against the rate at
 * which the same process verifies the same transactions' signatures with the
 * node's own verifier (worker threads over every core) — the ceiling that
 * admission can never beat, since every transaction is verified once.
 *
 * The node is the real assembly (SQLite event store in a temp dir, ShardActors,
 * producers, chain index); transactions enter through ChainNode.submit, as
 * the RPC handler calls it, one sequential nonce chain per account and all
 * accounts at once. A transfer counts when its block is applied and indexed.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Effect, Layer, ManagedRuntime } from "effect"
import { GenesisConfig } from "../domain/chain/genesis.js"
import { bytesToHex } from "../domain/chain/hex.js"
import { shardOf } from "../domain/chain/sharding.js"
import { SignatureVerifier, SignatureVerifierLive } from "../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../infra/eventstore/SqliteEventStore.js"
import { ChainNode } from "../src/node/ChainNode.js"
import { ChainNodeLive } from "../src/node/ChainNodeLive.js"
import type { BenchModule } from "./lib.js"
import { compare, makeTransfers, report } from "./lib.js"

const CHAIN_ID = 7_700n
const ACCOUNTS = 100
const TXS_PER_ACCOUNT = 15
const REPEATS = 3
const FEE = 1_000n

export const run: BenchModule["run"] = async () => {
  const dir = mkdtempSync(join(tmpdir(), "topai-bench-transfers-"))
  const genesis = new GenesisConfig({ chainId: CHAIN_ID, devAccountCount: ACCOUNTS, timestamp: 0 })
  const runtime = ManagedRuntime.make(
    ChainNodeLive({ genesis }).pipe(
      Layer.provideMerge(SignatureVerifierLive),
      Layer.provideMerge(SqliteEventStore.layer({ filename: join(dir, "events.db") }))
    )
  )
  try {
    let crossShard = 0
    const total = ACCOUNTS * TXS_PER_ACCOUNT
    const result = await compare(
      REPEATS,
      async (repeat) => {
        const chains = makeTransfers(genesis, { nonceBase: BigInt(repeat * TXS_PER_ACCOUNT), perAccount: TXS_PER_ACCOUNT, fee: FEE })
        crossShard = chains
          .flat()
          .filter((tx) => tx.body.payload.kind === "transfer" && shardOf(tx.sender, 2) !== shardOf(tx.body.payload.to, 2)).length
        const start = performance.now()
        await runtime.runPromise(
          Effect.gen(function* () {
            const node = yield* ChainNode
            // Each account submits its chain in nonce order, waiting only for the last one's block:
            // blocks keep each sender's nonce order, so the last included means all were.
            yield* Effect.forEach(
              chains,
              (txs) => Effect.forEach(txs, (tx, k) => node.submit(bytesToHex(tx.encoded), k === txs.length - 1)),
              { concurrency: "unbounded" }
            )
            const statuses = yield* Effect.forEach(chains.flat(), (tx) => node.transaction(tx.hash))
            const bad = statuses.filter((t) => t.status !== "included")
            if (bad.length > 0) throw new Error(`${bad.length} transfers not included`)
          })
        )
        return (total * 1_000) / (performance.now() - start)
      },
      async (repeat) => {
        const txs = makeTransfers(genesis, { nonceBase: BigInt(1_000 + repeat * TXS_PER_ACCOUNT), perAccount: TXS_PER_ACCOUNT, fee: FEE }).flat()
        const start = performance.now()
        const valid = await runtime.runPromise(Effect.flatMap(SignatureVerifier, (v) => v.verifyBatch(txs)))
        if (valid.some((ok) => !ok)) throw new Error("a signature did not verify")
        return (txs.length * 1_000) / (performance.now() - start)
      }
    )
    return [
      report({
        name: "transfers-end-to-end",
        unit: "tx",
        ...result,
        target: { ratio: 0.7 },
        details: { accounts: ACCOUNTS, transfersPerRun: total, crossShardPerRun: crossShard, repeats: REPEATS }
      })
    ]
  } finally {
    await runtime.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
}
