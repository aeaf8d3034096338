/**
 * The genesis of a chain: chain id, shard layout, dev accounts and extra
 * allocations, split per shard into each ledger's `ApplyGenesis`.
 */
import { Schema } from "effect"
import { TimestampMs } from "./block.js"
import { Address, devKey, devProposerKey, type PrivateKey } from "./keys.js"
import { Allocation, ApplyGenesis } from "./ledger.js"
import { FIRST_TRANSFER_SHARD, shardOf, TRANSFER_SHARDS_DEFAULT, TransferShardCount, type ShardId } from "./sharding.js"
import { PositiveAmount, Uint256 } from "./transaction.js"

/** Base units per token (18 decimals, as ETH's wei). */
export const UNITS_PER_TOKEN = 10n ** 18n
export const DEV_ACCOUNT_COUNT_DEFAULT = 10
export const DEV_ACCOUNT_COUNT_MAX = 10_000
export const DEV_BALANCE_DEFAULT = 1_000_000n * UNITS_PER_TOKEN
/** The fee wallets and the CLI suggest, in base units; the chain accepts any fee ≥ 0. */
export const DEFAULT_FEE = 1_000n

export class ShardProposer extends Schema.Class<ShardProposer>("ShardProposer")({
  shard: Schema.Int.pipe(Schema.positive()),
  address: Address
}) {}

export class GenesisConfig extends Schema.Class<GenesisConfig>("GenesisConfig")({
  chainId: Uint256,
  transferShards: Schema.optionalWith(TransferShardCount, { default: () => TRANSFER_SHARDS_DEFAULT }),
  devAccountCount: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, DEV_ACCOUNT_COUNT_MAX)), {
    default: () => DEV_ACCOUNT_COUNT_DEFAULT
  }),
  devBalance: Schema.optionalWith(PositiveAmount, { default: () => DEV_BALANCE_DEFAULT }),
  /** Genesis time in ms; block 1 may not be earlier. */
  timestamp: TimestampMs,
  allocations: Schema.optionalWith(Schema.Array(Allocation), { default: () => [] }),
  /** Who proposes on each transfer shard; absent shards use the dev proposer key. */
  proposers: Schema.optionalWith(Schema.Array(ShardProposer), { default: () => [] })
}) {}

export interface DevAccount {
  readonly index: number
  readonly key: PrivateKey
  readonly address: Address
}

export const devAccounts = (config: GenesisConfig): ReadonlyArray<DevAccount> =>
  Array.from({ length: config.devAccountCount }, (_, index) => {
    const key = devKey(index)
    return { index, key, address: key.publicKey.address }
  })

/** Every allocation of the chain: dev accounts first, then the configured ones. */
export const genesisAllocations = (config: GenesisConfig): ReadonlyArray<Allocation> => [
  ...devAccounts(config).map((d) => new Allocation({ address: d.address, amount: config.devBalance })),
  ...config.allocations
]

export const genesisSupply = (config: GenesisConfig): bigint =>
  genesisAllocations(config).reduce((sum, a) => sum + a.amount, 0n)

export const transferShardIds = (config: GenesisConfig): ReadonlyArray<ShardId> =>
  Array.from({ length: config.transferShards }, (_, i) => (FIRST_TRANSFER_SHARD + i) as ShardId)

/** The `ApplyGenesis` of one transfer shard: the allocations whose accounts live there. */
export const genesisCommand = (config: GenesisConfig, shard: ShardId): ApplyGenesis =>
  new ApplyGenesis({
    chainId: config.chainId,
    transferShards: config.transferShards,
    timestamp: config.timestamp,
    allocations: genesisAllocations(config).filter((a) => shardOf(a.address, config.transferShards) === shard)
  })

/** The proposer address of a shard: configured, or the devnet's deterministic one. */
export const proposerOf = (config: GenesisConfig, shard: ShardId): Address =>
  config.proposers.find((p) => p.shard === shard)?.address ?? devProposerKey(shard).publicKey.address
