/**
 * Whether a data dir's chain is one this version can resume. Versions
 * before the AI shard was a shard (issue 12) made chains whose shards this
 * version does not continue: no AI shard stream (`shard-{S+1}`), beacon
 * elections of S + 1 committees (the AI shard's seat would wait forever for
 * its committee), epochs closed without the AI shard's epoch receipts.
 * Resuming one would stall or crash; a node refuses it at start instead.
 *
 * The rule is on what the store began with: every shard of this version's
 * chain (`allShardIds`) began with the `GenesisApplied` this version makes
 * from the data dir's genesis (same hash), and the beacon's last election,
 * if any, elected a committee for every one of them. A store with no shard
 * event at all is a new chain.
 */
import type { CommitteesElected, ShardEvent } from "./events.js"
import { allShardIds, genesisCommand, type GenesisConfig } from "./genesis.js"
import { genesisHash } from "./ledger.js"
import { aiShardOf, type ShardId } from "./sharding.js"

/** A shard stream's first event as read at start. */
export type StoredStart = ShardEvent | "empty" | { readonly undecodable: string }

export const outdatedDataDirProblem = (
  genesis: GenesisConfig,
  firstOf: (shard: ShardId) => StoredStart,
  lastElection: CommitteesElected | undefined
): string | undefined => {
  const shards = allShardIds(genesis)
  const firsts = shards.map((shard) => ({ shard, first: firstOf(shard) }))
  if (firsts.every((f) => f.first === "empty")) return undefined
  const ai = aiShardOf(genesis.transferShards)
  for (const { shard, first } of firsts) {
    const name = shard === ai ? `the AI shard (shard ${shard})` : `shard ${shard}`
    if (first === "empty") return `${name} has no history while other shards do: the chain was made before the AI shard was a shard`
    if (typeof first !== "string" && "undecodable" in first) return `${name} began with an event this version cannot read (${first.undecodable})`
    if (first._tag !== "GenesisApplied") return `${name} began with ${first._tag}, not its genesis`
    const expected = genesisHash(shard, genesisCommand(genesis, shard))
    if (first.genesisHash !== expected) {
      return `${name} began from another genesis (hash ${first.genesisHash}) than this version makes from the data dir's genesis.json (${expected})`
    }
  }
  if (lastElection !== undefined) {
    const elected = new Set(lastElection.committees.map((c) => c.shard))
    const missing = shards.filter((s) => !elected.has(s))
    if (missing.length > 0) {
      return `the beacon's last election (epoch ${lastElection.epoch}) elected ${lastElection.committees.length} committees, none for shard ${missing.join(", ")}: elections made before the AI shard was a shard`
    }
  }
  return undefined
}
