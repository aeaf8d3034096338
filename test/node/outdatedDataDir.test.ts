/**
 * A data dir made by an older version (a chain whose AI shard has no
 * history, shards begun from another genesis, beacon elections without the
 * AI shard's committee) is refused at start with what to do, before any
 * shard actor replays or appends: never a crash or a stall.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { it as vit, afterAll } from "vitest"
import { Effect, Exit, Schema } from "effect"
import { shardStream } from "../../actors/ShardActor.js"
import { outdatedDataDirProblem, type StoredStart } from "../../domain/chain/dataDirVersion.js"
import { CommitteesElected, ShardEvent } from "../../domain/chain/events.js"
import { allShardIds, GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { makeLedger } from "../../domain/chain/ledger.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import { ShardCommittee } from "../../domain/chain/committees.js"
import { devValidators } from "../../domain/chain/validators.js"
import { EventStore, type NewEvent } from "../../infra/eventstore/EventStore.js"
import { MemoryEventStore } from "../../infra/eventstore/MemoryEventStore.js"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { SignatureVerifierInThread } from "../../infra/crypto/SignatureVerifier.js"
import { makeChainNode } from "../../src/node/ChainNodeLive.js"
import { OutdatedDataDir } from "../../src/node/dataDirVersion.js"
import { cleanup, makeTempDir, runCli } from "../e2e/support/processes.js"

const single = new GenesisConfig({ chainId: 9_100n, transferShards: 2, timestamp: 0, devAccountCount: 4 })
const bft = new GenesisConfig({ ...single, validators: devValidators(4) })
const AI = aiShardOf(single.transferShards)
const encode = Schema.encodeSync(ShardEvent)

/** The genesis events this version makes for one shard. */
const genesisEvents = (config: GenesisConfig, shard: ShardId): ReadonlyArray<ShardEvent> => {
  const ledger = makeLedger(shard)
  const r = ledger.decide(ledger.initialState, genesisCommand(config, shard))
  if (r._tag === "Left") throw new Error(r.left.message)
  return r.right
}
const firstOf = (config: GenesisConfig, except: ReadonlyArray<ShardId> = []) => (shard: ShardId): StoredStart =>
  except.includes(shard) ? "empty" : genesisEvents(config, shard)[0]!
/** An election as a version before the AI shard made it: committees for the beacon and the transfer shards only. */
const oldElection = (config: GenesisConfig) =>
  new CommitteesElected({
    epoch: 1,
    seed: `0x${"11".repeat(32)}` as Hash32,
    kept: false,
    committees: allShardIds(config)
      .filter((s) => s !== AI)
      .map((shard) => new ShardCommittee({ shard, epoch: 1, members: [config.validators![0]!, ...config.validators!.slice(1)] }))
  })

const asStored = (events: ReadonlyArray<ShardEvent>, prefix: string): ReadonlyArray<NewEvent> =>
  events.map((e, i) => {
    const { _tag, ...data } = encode(e) as { readonly _tag: string }
    return { id: `${prefix}:${i}`, type: _tag, data: JSON.parse(JSON.stringify(data)) as unknown }
  })

/** A store as an older version left it: every shard's genesis but the AI shard's. */
const fillOld = Effect.gen(function* () {
  const store = yield* EventStore
  for (const shard of allShardIds(single)) {
    if (shard !== AI) yield* store.append(shardStream(shard), asStored(genesisEvents(single, shard), `g${shard}`), "any")
  }
})

describe("outdatedDataDirProblem", () => {
  vit("a new store and a store of this version pass", () => {
    expect(outdatedDataDirProblem(single, () => "empty", undefined)).toBeUndefined()
    expect(outdatedDataDirProblem(single, firstOf(single), undefined)).toBeUndefined()
    const current = new CommitteesElected({ ...oldElection(bft), committees: allShardIds(bft).map((shard) => new ShardCommittee({ shard, epoch: 1, members: [bft.validators![0]!] })) })
    expect(outdatedDataDirProblem(bft, firstOf(bft), current)).toBeUndefined()
  })

  vit("an AI shard without history beside shards with it, another genesis, an unreadable start, an old election: each named", () => {
    expect(outdatedDataDirProblem(single, firstOf(single, [AI]), undefined)).toBe(
      `the AI shard (shard ${AI}) has no history while other shards do: the chain was made before the AI shard was a shard`
    )
    const other = new GenesisConfig({ ...single, chainId: 9_101n })
    expect(outdatedDataDirProblem(single, firstOf(other), undefined)).toMatch(/^shard 0 began from another genesis \(hash 0x[0-9a-f]{64}\) than this version makes/)
    expect(outdatedDataDirProblem(single, (s) => (s === 1 ? { undecodable: "GenesisApplied: kind is missing" } : firstOf(single)(s)), undefined)).toBe(
      "shard 1 began with an event this version cannot read (GenesisApplied: kind is missing)"
    )
    expect(outdatedDataDirProblem(bft, firstOf(bft), oldElection(bft))).toBe(
      `the beacon's last election (epoch 1) elected ${AI} committees, none for shard ${AI}: elections made before the AI shard was a shard`
    )
  })
})

describe("a node on an older version's data dir", () => {
  it.scoped("is refused at start with what to do, and nothing is appended", () =>
    Effect.gen(function* () {
      yield* fillOld
      const store = yield* EventStore
      const before = yield* store.lastPosition
      const exit = yield* Effect.exit(makeChainNode({ genesis: single }))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
      expect(error).toBeInstanceOf(OutdatedDataDir)
      expect((error as OutdatedDataDir).message).toMatch(/^this data dir was made by an older version of topai: the AI shard \(shard 3\) has no history .* Start the node on a new data dir/)
      expect(yield* store.lastPosition).toBe(before)
      expect(yield* store.readStream(shardStream(AI))).toEqual([])
    }).pipe(Effect.provide(MemoryEventStore.layer), Effect.provide(SignatureVerifierInThread))
  )
})

describe("topai node start on an older version's data dir", () => {
  afterAll(cleanup)
  vit("exits 1 with the reason and what to do, no stack trace", { timeout: 60_000 }, async () => {
    const dir = makeTempDir("old-dir")
    writeFileSync(join(dir, "genesis.json"), Schema.encodeSync(Schema.parseJson(GenesisConfig))(single))
    await Effect.runPromise(fillOld.pipe(Effect.provide(SqliteEventStore.layer({ filename: join(dir, "events.db") })), Effect.scoped))
    const r = await runCli(["node", "start", "--data-dir", dir, "--port", "0", "--workers", "0"], { timeoutMs: 45_000 })
    expect({ code: r.code, timedOut: r.timedOut }).toEqual({ code: 1, timedOut: false })
    expect(r.stderr).toMatch(/^error: this data dir was made by an older version of topai: the AI shard \(shard 3\) has no history while other shards do.*Start the node on a new data dir/m)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })
})
