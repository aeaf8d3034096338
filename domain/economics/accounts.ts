/**
 * The system accounts money moves through. Each is a keyless balance on the
 * AI shard (no seed or key derives its address), moved only by the AI
 * ledger's rules: payouts leave it as receipts to the payees' shards.
 *
 *   reserve      the mining reserve: every reward is paid from it ("minted")
 *   foundation   the foundation's fund: the compute subsidy
 *   stakePool    bonded and unbonding worker stakes
 *   treasury     protocol fees, when the sink is "treasury"
 *   escrow       developers' deposits per (developer, model)
 *   beacon       the sender of the beacon's epoch receipts (never holds money)
 *   burn         a key-less address on a transfer shard: what it receives is burned for good
 */
import { keccak256 } from "../chain/hash.js"
import { bytesToHex, utf8 } from "../chain/hex.js"
import type { Address } from "../chain/keys.js"

/** No key can spend from it (Ethereum's customary burn address). */
export const BURN_ADDRESS = "0x000000000000000000000000000000000000dead" as Address

/** The accounts a payout can come from. */
export const PayoutSource = ["reserve", "foundation", "stakePool", "escrow"] as const
export type PayoutSource = (typeof PayoutSource)[number]

/**
 * A keyless system address: the last 20 bytes of keccak256("topai/system/" + name).
 * No seed derives a key for it, so no signature can spend from it; only the
 * ledger's rules move its money (the AI shard's sub-ledgers say whose it is).
 */
export const systemAddress = (name: string): Address => bytesToHex(keccak256(utf8(`topai/system/${name}`)).slice(12)) as Address

export const SYSTEM_RESERVE: Address = systemAddress("reserve")
export const SYSTEM_FOUNDATION: Address = systemAddress("foundation")
export const SYSTEM_STAKE_POOL: Address = systemAddress("stake-pool")
export const SYSTEM_TREASURY: Address = systemAddress("treasury")
export const SYSTEM_ESCROW: Address = systemAddress("escrow")
/** The beacon's: the sender of the epoch receipts it sends the AI shard (amount 0). */
export const SYSTEM_BEACON: Address = systemAddress("beacon")

const SYSTEM_ADDRESSES: ReadonlySet<string> = new Set([SYSTEM_RESERVE, SYSTEM_FOUNDATION, SYSTEM_STAKE_POOL, SYSTEM_TREASURY, SYSTEM_ESCROW, SYSTEM_BEACON])

/** One of the keyless system accounts (BURN is not one: nothing is ever paid out of it). */
export const isSystemAddress = (a: Address): boolean => SYSTEM_ADDRESSES.has(a.toLowerCase())
