/**
 * At start, before any shard actor replays: a data dir made by an older
 * version (see domain/chain/dataDirVersion.ts) is refused with what to do,
 * instead of a node that crashes or stalls on it.
 */
import { Effect, Either, Schema } from "effect"
import type { CommitteesElected } from "../../domain/chain/events.js"
import { outdatedDataDirProblem, type StoredStart } from "../../domain/chain/dataDirVersion.js"
import type { GenesisConfig } from "../../domain/chain/genesis.js"
import { allShardIds } from "../../domain/chain/genesis.js"
import { BEACON_SHARD } from "../../domain/chain/sharding.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import { shardStream } from "../../actors/ShardActor.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"

export class OutdatedDataDir extends Schema.TaggedError<OutdatedDataDir>()("OutdatedDataDir", {
  reason: Schema.Literal("MadeByAnOlderVersion"),
  detail: Schema.String
}) {
  override get message(): string {
    return (
      `this data dir was made by an older version of topai: ${this.detail}. ` +
      "This version cannot resume that chain. Start the node on a new data dir (another --data-dir, or dataDir in a validator's config; " +
      "for a BFT chain, a new genesis for every validator), or move this one away; keep it to audit it with the version that made it"
    )
  }
}

/** Backwards through the beacon, a page at a time, to its last election (one every epoch). */
const ELECTION_PAGE = 512

export const refuseOutdatedDataDir = (genesis: GenesisConfig): Effect.Effect<void, OutdatedDataDir, EventStore> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const firsts = new Map<number, StoredStart>()
    for (const shard of allShardIds(genesis)) {
      const [first] = yield* store.readStream(shardStream(shard), { from: 0, limit: 1 })
      if (first === undefined) firsts.set(shard, "empty")
      else {
        const decoded = decodeEventOf("shard", first.type, first.data)
        firsts.set(shard, Either.isRight(decoded) ? decoded.right : { undecodable: decoded.left })
      }
    }
    let lastElection: CommitteesElected | undefined
    if (genesis.validators !== undefined && firsts.get(BEACON_SHARD) !== "empty") {
      const beacon = shardStream(BEACON_SHARD)
      let before = (yield* store.head(beacon))?.revision ?? -1
      while (lastElection === undefined && before >= 0) {
        const page = yield* store.readStream(beacon, { from: before, limit: ELECTION_PAGE, direction: "backwards" })
        if (page.length === 0) break
        for (const e of page) {
          if (e.type !== "CommitteesElected") continue
          const decoded = decodeEventOf("shard", e.type, e.data)
          if (Either.isRight(decoded) && decoded.right._tag === "CommitteesElected") lastElection = decoded.right
          break
        }
        before = page[page.length - 1]!.revision - 1
      }
    }
    const problem = outdatedDataDirProblem(genesis, (shard) => firsts.get(shard) ?? "empty", lastElection)
    if (problem !== undefined) return yield* new OutdatedDataDir({ reason: "MadeByAnOlderVersion", detail: problem })
  }).pipe(Effect.catchTag("EventStoreError", (e) => Effect.die(e)))
