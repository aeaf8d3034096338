/**
 * How the AI shard learns that an epoch ended: the beacon, in the block that
 * ends epoch e (`EpochEnded`), also sends a receipt of amount 0 with purpose
 * `{kind: "epoch", epoch, startAt, endAt}` to the AI shard, from a keyless
 * beacon system address. The AI shard's committee checks it like any other
 * receipt and credits it once by id.
 */
import { keccakHex, type Hash32 } from "./hash.js"
import { utf8 } from "./hex.js"
import type { Address } from "./keys.js"
import { SYSTEM_BEACON } from "../economics/accounts.js"

/** The beacon's system account (`systemAddress("beacon")`): no key derives it; it never holds money. */
export const BEACON_SYSTEM_ADDRESS: Address = SYSTEM_BEACON

/** The cause hash (the receipt's txHash) of epoch e's receipt: no transaction caused it. */
export const epochEndCause = (epoch: number): Hash32 => keccakHex(utf8(`topai/epoch-end/${epoch}`))
