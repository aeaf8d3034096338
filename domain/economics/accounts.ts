/**
 * The system accounts money moves through. Each is an ordinary account on a
 * transfer shard; in this one-node devnet the node holds their keys (as it
 * holds the escrow key) and moves their money only as the epoch ledgers and
 * settled usage say. With BFT the committee will hold them.
 *
 *   reserve      the mining reserve: every reward is paid from it ("minted")
 *   foundation   the foundation's fund: the compute subsidy
 *   stakePool    bonded and unbonding worker stakes
 *   treasury     protocol fees, when the sink is "treasury"
 *   burn         a key-less address: what it receives is burned for good
 */
import { Address, devKeyFromSeed, type PrivateKey } from "../chain/keys.js"

export const reserveKey = (): PrivateKey => devKeyFromSeed("topai-mining-reserve")
export const foundationKey = (): PrivateKey => devKeyFromSeed("topai-foundation")
export const stakePoolKey = (): PrivateKey => devKeyFromSeed("topai-stake-pool")
export const treasuryKey = (): PrivateKey => devKeyFromSeed("topai-treasury")

export const RESERVE_ADDRESS: Address = reserveKey().publicKey.address
export const FOUNDATION_ADDRESS: Address = foundationKey().publicKey.address
export const STAKE_POOL_ADDRESS: Address = stakePoolKey().publicKey.address
export const TREASURY_ADDRESS: Address = treasuryKey().publicKey.address
/** No key can spend from it (Ethereum's customary burn address). */
export const BURN_ADDRESS = "0x000000000000000000000000000000000000dead" as Address

/** The accounts a payout can come from. */
export const PayoutSource = ["reserve", "foundation", "stakePool", "escrow"] as const
export type PayoutSource = (typeof PayoutSource)[number]
