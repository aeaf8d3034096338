/**
 * The genesis of a chain: chain id, shard layout, dev accounts, the
 * economics (whose mining reserve and foundation fund are allocated here,
 * so every unit that will ever exist is in the genesis supply) and extra
 * allocations, split per shard into each ledger's `ApplyGenesis`; the
 * beacon's has no accounts and carries the epoch length.
 */
import { Schema } from "effect"
import { TimestampMs } from "./block.js"
import { keccakHex, type Hash32 } from "./hash.js"
import { utf8 } from "./hex.js"
import { Address, devKey, devProposerKey, type PrivateKey } from "./keys.js"
import { Allocation, ApplyGenesis } from "./ledger.js"
import {
  BEACON_SHARD,
  chainShardIds,
  FIRST_TRANSFER_SHARD,
  isAiShard,
  shardOf,
  TRANSFER_SHARDS_DEFAULT,
  TransferShardCount,
  type ShardId
} from "./sharding.js"
import { defaultEconomics, EconomicsConfig } from "../economics/config.js"
import { isSystemAddress, SYSTEM_FOUNDATION, SYSTEM_RESERVE } from "../economics/accounts.js"
import { DEFAULT_GPU_CLASSES, GpuClassTable } from "../ai/worker/gpuClass.js"
import { AiGenesis } from "./aiGenesis.js"
import { isAiShardKind, PositiveAmount, Uint256, type TransactionKind } from "./transaction.js"
import { GenesisValidator } from "./validators.js"

/** Base units per token (18 decimals, as ETH's wei). */
export const UNITS_PER_TOKEN = 10n ** 18n
export const DEV_ACCOUNT_COUNT_DEFAULT = 10
export const DEV_ACCOUNT_COUNT_MAX = 10_000
export const DEV_BALANCE_DEFAULT = 1_000_000n * UNITS_PER_TOKEN
/** The fee wallets and the CLI suggest, in base units; the chain accepts any fee ≥ 0. */
export const DEFAULT_FEE = 1_000n

/**
 * The fee to suggest for a kind: 0 for the AI shard's kinds (the fee comes
 * from the sender's AI-shard balance, and a provider holds nothing there),
 * else `DEFAULT_FEE`.
 */
export const defaultFeeOf = (kind: TransactionKind): bigint => (isAiShardKind(kind) ? 0n : DEFAULT_FEE)

/** The devnet's governance address: dev account 0's. */
export const DEVNET_GOVERNANCE: Address = devKey(0).publicKey.address

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
  proposers: Schema.optionalWith(Schema.Array(ShardProposer), { default: () => [] }),
  /** A BFT chain's validators (every shard's committee); absent: each shard has one producer (`proposers`). */
  validators: Schema.optionalWith(Schema.Array(GenesisValidator), { exact: true }),
  /** Seats per committee the beacon elects each epoch (a BFT chain's); absent: the number of genesis validators. */
  committeeSize: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { exact: true }),
  /** Fixed at genesis; the devnet's governance key is dev account 0. */
  economics: Schema.optionalWith(EconomicsConfig, { default: () => defaultEconomics(DEVNET_GOVERNANCE) }),
  /** GPU class → units coefficient: what a worker's declared class counts for on the AI shard. */
  gpuClasses: Schema.optionalWith(GpuClassTable, { default: () => DEFAULT_GPU_CLASSES })
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

/**
 * Every allocation of the chain: dev accounts first, then the mining reserve
 * and the foundation fund (if any; keyless accounts on the AI shard), then
 * the configured ones.
 */
export const genesisAllocations = (config: GenesisConfig): ReadonlyArray<Allocation> => {
  const { miningReserve, foundationFund } = config.economics
  return [
    ...devAccounts(config).map((d) => new Allocation({ address: d.address, amount: config.devBalance })),
    ...(miningReserve > 0n ? [new Allocation({ address: SYSTEM_RESERVE, amount: miningReserve })] : []),
    ...(foundationFund > 0n ? [new Allocation({ address: SYSTEM_FOUNDATION, amount: foundationFund })] : []),
    ...config.allocations
  ]
}

/**
 * The network's genesis as one hash, for operators to compare (`topai audit
 * replay --genesis-hash`): keccak-256 of its schema encoding as compact JSON.
 */
export const genesisConfigHash = (config: GenesisConfig): Hash32 =>
  keccakHex(utf8(JSON.stringify(Schema.encodeSync(GenesisConfig)(config))))

export const genesisSupply = (config: GenesisConfig): bigint =>
  genesisAllocations(config).reduce((sum, a) => sum + a.amount, 0n)

export const transferShardIds = (config: GenesisConfig): ReadonlyArray<ShardId> =>
  Array.from({ length: config.transferShards }, (_, i) => (FIRST_TRANSFER_SHARD + i) as ShardId)

/** Every shard of the chain: the beacon, then the transfer shards, then the AI shard. */
export const allShardIds = (config: GenesisConfig): ReadonlyArray<ShardId> => chainShardIds(config.transferShards)

/**
 * The `ApplyGenesis` of one shard: for a transfer shard, the allocations whose
 * accounts live there; for the beacon, none, and the epoch length; for the
 * AI shard, none (its system accounts come with the AI ledger) and its kind.
 */
export const genesisCommand = (config: GenesisConfig, shard: ShardId): ApplyGenesis =>
  new ApplyGenesis({
    chainId: config.chainId,
    transferShards: config.transferShards,
    timestamp: config.timestamp,
    allocations: allocationsOfShard(config, shard),
    governance: config.economics.governance,
    ...(shard === BEACON_SHARD ? { epochBlocks: config.economics.epochBlocks } : {}),
    ...(config.validators === undefined ? {} : { validators: config.validators }),
    ...(shard === BEACON_SHARD && config.validators !== undefined && config.committeeSize !== undefined
      ? { committeeSize: config.committeeSize }
      : {}),
    ...(isAiShard(shard, config.transferShards)
      ? {
          kind: "ai" as const,
          ai: new AiGenesis({
            economics: config.economics,
            gpuClasses: config.gpuClasses,
            totalSupply: genesisSupply(config),
            ...(config.validators === undefined ? { attestor: proposerOf(config, shard) } : {})
          })
        }
      : {})
  })

/** A shard's genesis accounts: the system accounts on the AI shard, each other account on its transfer shard, none on the beacon. */
export const allocationsOfShard = (config: GenesisConfig, shard: ShardId): ReadonlyArray<Allocation> => {
  if (shard === BEACON_SHARD) return []
  const ai = isAiShard(shard, config.transferShards)
  return genesisAllocations(config).filter((a) =>
    isSystemAddress(a.address) ? ai : !ai && shardOf(a.address, config.transferShards) === shard
  )
}

/** The proposer address of a shard: configured, or the devnet's deterministic one. */
export const proposerOf = (config: GenesisConfig, shard: ShardId): Address =>
  config.proposers.find((p) => p.shard === shard)?.address ?? devProposerKey(shard).publicKey.address
