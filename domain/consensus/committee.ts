/**
 * Committees: who votes in one shard for one epoch, with what stake, and the
 * quorum arithmetic over that stake.
 *
 * Election (the beacon's job at each epoch boundary) is a stake-weighted
 * shuffle without replacement, seeded from a committed block hash: draw i
 * takes the validator under
 *
 *   r_i = uint256(sha256("topai/committee/v1" ‖ seed ‖ epoch u64 ‖ i u32)) mod (stake still in the pool)
 *
 * on the cumulative stake line of the remaining validators (sorted by id, so
 * the input order does not matter). The shuffled list is dealt out in
 * committees of `committeeSize`, one per shard in the order given; with too
 * few validators for disjoint committees, each shard draws its own (seeded
 * with the shard too), so committees overlap. No clock,
 * no Math.random: the same seed and validator set give the same committees
 * on every node.
 */
import { Either, Schema } from "effect"
import { type Hash32, hashBytes, sha256 } from "../chain/hash.js"
import { bytesToHex } from "../chain/hex.js"
import type { ShardId } from "../chain/sharding.js"
import type { NodeIndex, View } from "./types.js"

export interface Member {
  /** The validator's stable name (its address on the beacon). */
  readonly validator: string
  readonly stake: bigint
  /** The key its votes verify under (48-byte compressed G1 for BLS). */
  readonly publicKey: Uint8Array
}

/** A fraction of the committee's stake; a quorum is strictly more than it. */
export interface Fraction {
  readonly numerator: bigint
  readonly denominator: bigint
}

/**
 * HotStuff: with n ≥ 3f + 1, any two sets of more than 2/3 of the stake share
 * more than 1/3 of it, so at least one honest member: two conflicting
 * certificates for one view need an honest member to sign both.
 */
export const QUORUM_BFT: Fraction = { numerator: 2n, denominator: 3n }
/** More than 1/3 of the stake contains an honest member (timeouts: join the view change). */
export const ONE_HONEST: Fraction = { numerator: 1n, denominator: 3n }

export interface Committee {
  readonly shard: ShardId
  readonly epoch: number
  readonly members: ReadonlyArray<Member>
  readonly totalStake: bigint
  /** The quorum threshold; `QUORUM_BFT` except in tests that show what a weaker one breaks. */
  readonly quorum: Fraction
}

export class CommitteeError extends Schema.TaggedError<CommitteeError>()("CommitteeError", {
  reason: Schema.Literal("Empty", "NonPositiveStake", "DuplicateValidator", "NotEnoughValidators", "BadSize"),
  detail: Schema.String
}) {}

export const makeCommittee = (
  shard: ShardId,
  epoch: number,
  members: ReadonlyArray<Member>,
  quorum: Fraction = QUORUM_BFT
): Either.Either<Committee, CommitteeError> => {
  if (members.length === 0) return Either.left(new CommitteeError({ reason: "Empty", detail: `shard ${shard}` }))
  const seen = new Set<string>()
  let totalStake = 0n
  for (const m of members) {
    if (m.stake <= 0n) {
      return Either.left(new CommitteeError({ reason: "NonPositiveStake", detail: `${m.validator}: ${m.stake}` }))
    }
    if (seen.has(m.validator)) {
      return Either.left(new CommitteeError({ reason: "DuplicateValidator", detail: m.validator }))
    }
    seen.add(m.validator)
    totalStake += m.stake
  }
  return Either.right({ shard, epoch, members, totalStake, quorum })
}

/** Strictly more than `fraction` of the committee's stake. */
export const exceeds = (committee: Committee, stake: bigint, fraction: Fraction): boolean =>
  stake * fraction.denominator > committee.totalStake * fraction.numerator

/** Strictly more than the committee's quorum fraction (2/3) of its stake. */
export const hasQuorum = (committee: Committee, stake: bigint): boolean => exceeds(committee, stake, committee.quorum)

/** Round-robin over the member list, which the election already ordered by a stake-weighted shuffle. */
export const leaderOf = (committee: Committee, view: View): NodeIndex => view % committee.members.length

// ---------------------------------------------------------------------------
// Election

export interface Validator {
  readonly validator: string
  readonly stake: bigint
  readonly publicKey: Uint8Array
}

export interface ElectionParams {
  readonly validators: ReadonlyArray<Validator>
  readonly shards: ReadonlyArray<ShardId>
  readonly committeeSize: number
  readonly epoch: number
  /** A committed block hash (the beacon's last block of the previous epoch). */
  readonly seed: Hash32
}

const ELECTION_TAG = "topai/committee/v1"

const drawOf = (seed: Uint8Array, epoch: number, i: number): bigint => {
  const buf = new Uint8Array(12)
  const view = new DataView(buf.buffer)
  view.setBigUint64(0, BigInt(epoch))
  view.setUint32(8, i)
  const digest = sha256(ELECTION_TAG, seed, buf)
  let out = 0n
  for (const b of digest) out = (out << 8n) | BigInt(b)
  return out
}

/**
 * The validators in a stake-weighted random order (all of them with positive
 * stake). The 256-bit draw makes the modulo bias below 2^-190 for any stake
 * total under 2^64.
 */
export const weightedShuffle = (
  validators: ReadonlyArray<Validator>,
  seed: Hash32,
  epoch: number
): ReadonlyArray<Validator> => {
  const pool = validators
    .filter((v) => v.stake > 0n)
    .sort((a, b) => (a.validator < b.validator ? -1 : a.validator > b.validator ? 1 : 0))
  let remaining = pool.reduce((sum, v) => sum + v.stake, 0n)
  const seedBytes = hashBytes(seed)
  const out: Array<Validator> = []
  for (let i = 0; pool.length > 0; i++) {
    const r = drawOf(seedBytes, epoch, i) % remaining
    let cumulative = 0n
    let picked = pool.length - 1
    for (let j = 0; j < pool.length; j++) {
      cumulative += pool[j]!.stake
      if (r < cumulative) {
        picked = j
        break
      }
    }
    const [chosen] = pool.splice(picked, 1)
    out.push(chosen!)
    remaining -= chosen!.stake
  }
  return out
}

/** Each shard's committee for `epoch`: disjoint, `committeeSize` members each. */
export const electCommittees = (
  params: ElectionParams
): Either.Either<ReadonlyMap<ShardId, Committee>, CommitteeError> => {
  const { validators, shards, committeeSize, epoch, seed } = params
  if (!Number.isInteger(committeeSize) || committeeSize < 1) {
    return Either.left(new CommitteeError({ reason: "BadSize", detail: `committee size ${committeeSize}` }))
  }
  const ids = new Set<string>()
  for (const v of validators) {
    if (ids.has(v.validator)) return Either.left(new CommitteeError({ reason: "DuplicateValidator", detail: v.validator }))
    ids.add(v.validator)
  }
  const shuffled = weightedShuffle(validators, seed, epoch)
  if (shuffled.length < committeeSize) {
    return Either.left(
      new CommitteeError({
        reason: "NotEnoughValidators",
        detail: `committees of ${committeeSize} seats, ${shuffled.length} validators have stake`
      })
    )
  }
  // Enough validators for every shard: deal them out, disjoint. Fewer (a small
  // network): each shard draws its own committee from all of them.
  const disjoint = shuffled.length >= shards.length * committeeSize
  const out = new Map<ShardId, Committee>()
  for (const [k, shard] of shards.entries()) {
    const seats = disjoint
      ? shuffled.slice(k * committeeSize, (k + 1) * committeeSize)
      : weightedShuffle(validators, bytesToHex(sha256(ELECTION_TAG, hashBytes(seed), String(shard))) as Hash32, epoch).slice(0, committeeSize)
    const committee = makeCommittee(shard, epoch, seats)
    if (Either.isLeft(committee)) return Either.left(committee.left)
    out.set(shard, committee.right)
  }
  return Either.right(out)
}
