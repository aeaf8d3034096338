/**
 * The devnet as the tests see it: the genesis dev accounts (`topai key dev N`)
 * and their shards, signing transfers the way a wallet does, and polling
 * with a deadline.
 */
import { devKey } from "../../../domain/chain/keys.js"
import type { Address, PrivateKey } from "../../../domain/chain/keys.js"
import { DEFAULT_FEE, DEV_ACCOUNT_COUNT_DEFAULT, DEV_BALANCE_DEFAULT, DEVNET_GOVERNANCE } from "../../../domain/chain/genesis.js"
import { defaultEconomics } from "../../../domain/economics/config.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { shardOf, TRANSFER_SHARDS_DEFAULT } from "../../../domain/chain/sharding.js"
import { TransactionBody, signTransaction } from "../../../domain/chain/transaction.js"
import { DEVNET_CHAIN_ID } from "../../../src/cli/commands/node.js"

export { DEFAULT_FEE, DEVNET_CHAIN_ID }

export const TRANSFER_SHARDS = TRANSFER_SHARDS_DEFAULT
export const GENESIS_BALANCE = DEV_BALANCE_DEFAULT
/** What the dev accounts hold at genesis. */
export const DEV_SUPPLY = DEV_BALANCE_DEFAULT * BigInt(DEV_ACCOUNT_COUNT_DEFAULT)
/** What the system accounts hold at genesis: the mining reserve and the foundation fund. */
export const SYSTEM_SUPPLY = (() => {
  const { miningReserve, foundationFund } = defaultEconomics(DEVNET_GOVERNANCE)
  return miningReserve + foundationFund
})()
/** Every unit there will ever be. */
export const GENESIS_SUPPLY = DEV_SUPPLY + SYSTEM_SUPPLY

/**
 * `topai node start` flags for a beacon that makes a block an hour: for tests
 * that need the event log to move only with their own transactions
 * (test/e2e/beacon.test.ts watches the beacon tick).
 */
export const QUIET_BEACON: ReadonlyArray<string> = ["--beacon-interval-ms", String(60 * 60 * 1000)]

export interface DevAccount {
  readonly index: number
  readonly key: PrivateKey
  readonly address: Address
  readonly shard: number
}

export const DEV: ReadonlyArray<DevAccount> = Array.from({ length: DEV_ACCOUNT_COUNT_DEFAULT }, (_, index) => {
  const key = devKey(index)
  const address = key.publicKey.address
  return { index, key, address, shard: shardOf(address, TRANSFER_SHARDS) }
})

/**
 * The `skip`-th pair of distinct dev accounts (from, to) where `same` says
 * whether they share a shard; `fromShard` restricts the sender's shard.
 */
export const devPair = (same: boolean, skip = 0, fromShard?: number): readonly [DevAccount, DevAccount] => {
  const pairs = DEV.filter((a) => fromShard === undefined || a.shard === fromShard).flatMap((a) =>
    DEV.filter((b) => b !== a && (a.shard === b.shard) === same).map((b) => [a, b] as const)
  )
  const pair = pairs[skip]
  if (pair === undefined) throw new Error(`no ${same ? "same" : "cross"}-shard dev pair #${skip}`)
  return pair
}

export interface SignedTransfer {
  readonly raw: string
  readonly hash: string
  readonly from: Address
  readonly to: Address
  readonly amount: bigint
  readonly fee: bigint
  readonly nonce: bigint
}

export const signTransfer = (o: {
  readonly key: PrivateKey
  readonly to: Address
  readonly amount: bigint
  readonly nonce: bigint
  readonly fee?: bigint | undefined
  readonly chainId?: bigint | undefined
}): SignedTransfer => {
  const fee = o.fee ?? DEFAULT_FEE
  const body = new TransactionBody({
    chainId: o.chainId ?? DEVNET_CHAIN_ID,
    nonce: o.nonce,
    fee,
    payload: { kind: "transfer", to: o.to, amount: o.amount }
  })
  const tx = signTransaction(body, o.key)
  return { raw: bytesToHex(tx.encoded), hash: tx.hash, from: tx.sender, to: o.to, amount: o.amount, fee, nonce: o.nonce }
}

export { waitFor } from "../../support/waitFor.js"
