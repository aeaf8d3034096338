/**
 * ShardActor: one shard's ledger. Receives genesis and blocks, decides with
 * the ledger rules in domain/chain/ledger.ts, appends to `shard-{id}`.
 */
import type { Effect, Scope } from "effect"
import type { EventStore } from "../infra/eventstore/EventStore.js"
import { makeLedger, genesisHash } from "../domain/chain/ledger.js"
import type { LedgerCommand, LedgerError, LedgerState } from "../domain/chain/ledger.js"
import { ShardEvent } from "../domain/chain/events.js"
import type { ShardId } from "../domain/chain/sharding.js"
import { makeActor } from "./kernel/Actor.js"
import type { Actor } from "./kernel/Actor.js"

export type ShardActor = Actor<LedgerState, LedgerCommand, ShardEvent, LedgerError>

export const shardStream = (shard: number): string => `shard-${shard}`

/** Event ids come from the block (or genesis) hash and the event's index: a retried block is idempotent. */
const causeOf = (shard: ShardId, command: LedgerCommand): string =>
  command._tag === "ApplyBlock" ? command.block.hash : genesisHash(shard, command)

export const makeShardActor = (shard: ShardId): Effect.Effect<ShardActor, never, EventStore | Scope.Scope> =>
  makeActor({
    stream: shardStream(shard),
    decider: makeLedger(shard),
    eventSchema: ShardEvent,
    eventId: (command, index) => `${causeOf(shard, command)}:${index}`,
    metadata: (command) => ({
      shard,
      height: command._tag === "ApplyBlock" ? command.block.header.height : 0,
      causation: causeOf(shard, command)
    })
  })
