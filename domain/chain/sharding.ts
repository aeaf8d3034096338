/**
 * Accounts map to 1024 tables by their address; tables map to shards in
 * contiguous, balanced ranges. Moving a table is how shards will be split or
 * merged later, so the table, not the shard, is the stable unit.
 * Shard 0 is the beacon; transfer shards are 1..S; the AI shard is S + 1
 * (it holds no tables: only the keyless system accounts and fee balances).
 */
import { Schema } from "effect"
import type { Address } from "./keys.js"

export const TABLE_COUNT = 1024
/** log2(TABLE_COUNT): a table is the top 10 bits of the address (uniform: addresses are hash output). */
const TABLE_BITS = 10
const BITS_PER_BYTE = 8
const ADDRESS_HEX_OFFSET = 2 // skip "0x"
const TWO_BYTES_HEX = 4

export const BEACON_SHARD = 0
export const FIRST_TRANSFER_SHARD = 1
export const TRANSFER_SHARDS_MIN = 1
/** A shard holds at least one table. */
export const TRANSFER_SHARDS_MAX = TABLE_COUNT
export const TRANSFER_SHARDS_DEFAULT = 2

/** The largest shard id: the AI shard of a chain with the most transfer shards. */
export const SHARD_ID_MAX = TRANSFER_SHARDS_MAX + 1
export const ShardId = Schema.Int.pipe(Schema.between(BEACON_SHARD, SHARD_ID_MAX), Schema.brand("ShardId"))
export type ShardId = typeof ShardId.Type
export const TransferShardCount = Schema.Int.pipe(Schema.between(TRANSFER_SHARDS_MIN, TRANSFER_SHARDS_MAX))
/** Beacon blocks per epoch. */
export const EpochBlocks = Schema.Int.pipe(Schema.positive())

const assertShardCount = (transferShards: number): void => {
  if (!Number.isInteger(transferShards) || transferShards < TRANSFER_SHARDS_MIN || transferShards > TRANSFER_SHARDS_MAX) {
    throw new RangeError(`transfer shard count ${transferShards} not in [${TRANSFER_SHARDS_MIN}, ${TRANSFER_SHARDS_MAX}]`)
  }
}

/** The address's table: its first 10 bits. */
export const tableOf = (address: Address): number => {
  const firstTwoBytes = parseInt(address.slice(ADDRESS_HEX_OFFSET, ADDRESS_HEX_OFFSET + TWO_BYTES_HEX), 16)
  return firstTwoBytes >> (2 * BITS_PER_BYTE - TABLE_BITS)
}

/** Table t goes to shard 1 + floor(t·S / 1024): contiguous ranges whose sizes differ by at most one. */
export const shardOfTable = (table: number, transferShards: number): ShardId => {
  assertShardCount(transferShards)
  if (!Number.isInteger(table) || table < 0 || table >= TABLE_COUNT) throw new RangeError(`table ${table} out of range`)
  return (FIRST_TRANSFER_SHARD + Math.floor((table * transferShards) / TABLE_COUNT)) as ShardId
}

export const shardOf = (address: Address, transferShards: number): ShardId =>
  shardOfTable(tableOf(address), transferShards)

/** The tables of a transfer shard, as [first, last] inclusive. */
export const tablesOfShard = (shard: ShardId, transferShards: number): { readonly first: number; readonly last: number } => {
  assertShardCount(transferShards)
  const k = shard - FIRST_TRANSFER_SHARD
  if (k < 0 || k >= transferShards) throw new RangeError(`shard ${shard} is not one of ${transferShards} transfer shards`)
  // smallest t with floor(t·S/1024) ≥ k is ceil(k·1024/S)
  const first = Math.ceil((k * TABLE_COUNT) / transferShards)
  const last = Math.ceil(((k + 1) * TABLE_COUNT) / transferShards) - 1
  return { first, last }
}

export const isTransferShard = (shard: number, transferShards: number): boolean =>
  Number.isInteger(shard) && shard >= FIRST_TRANSFER_SHARD && shard < FIRST_TRANSFER_SHARD + transferShards

/** The AI shard of a chain with `transferShards` transfer shards: the one after the last transfer shard. */
export const aiShardOf = (transferShards: number): ShardId => {
  assertShardCount(transferShards)
  return (FIRST_TRANSFER_SHARD + transferShards) as ShardId
}

export const isAiShard = (shard: number, transferShards: number): boolean => shard === FIRST_TRANSFER_SHARD + transferShards

export type ShardKind = "beacon" | "transfer" | "ai"

/** What a shard is; throws for an id that is none of the chain's shards. */
export const shardKindOf = (shard: number, transferShards: number): ShardKind => {
  if (shard === BEACON_SHARD) return "beacon"
  if (isTransferShard(shard, transferShards)) return "transfer"
  if (isAiShard(shard, transferShards)) return "ai"
  throw new RangeError(`shard ${shard} is not a shard of a chain with ${transferShards} transfer shards`)
}

/** Every shard of a chain with `transferShards` transfer shards, in id order: the beacon, 1..S, the AI shard. */
export const chainShardIds = (transferShards: number): ReadonlyArray<ShardId> => [
  BEACON_SHARD as ShardId,
  ...Array.from({ length: transferShards }, (_, i) => (FIRST_TRANSFER_SHARD + i) as ShardId),
  aiShardOf(transferShards)
]
