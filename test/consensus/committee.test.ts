/**
 * Committee election: a stake-weighted shuffle seeded from a block hash.
 * Properties: deterministic (whatever the input order), no validator twice,
 * committees disjoint and of the configured size, and selection
 * proportional to stake.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { type Hash32, sha256 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import {
  electCommittees,
  exceeds,
  hasQuorum,
  leaderOf,
  makeCommittee,
  ONE_HONEST,
  type Validator,
  weightedShuffle
} from "../../domain/consensus/committee.js"

const hashOf = (n: number): Hash32 => bytesToHex(sha256("committee-test", String(n))) as Hash32
const validator = (i: number, stake: bigint): Validator => ({
  validator: `val${String(i).padStart(3, "0")}`,
  stake,
  publicKey: Uint8Array.of(i)
})

const validatorsArb = fc
  .array(fc.bigInt({ min: 1n, max: 1_000_000n }), { minLength: 1, maxLength: 40 })
  .map((stakes) => stakes.map((s, i) => validator(i, s)))

describe("weighted shuffle", () => {
  it("is deterministic in the seed, the epoch and the validator set (not its order), and a permutation", () => {
    fc.assert(
      fc.property(validatorsArb, fc.nat(), fc.nat({ max: 1000 }), (validators, seed, epoch) => {
        const once = weightedShuffle(validators, hashOf(seed), epoch).map((v) => v.validator)
        const again = weightedShuffle([...validators].reverse(), hashOf(seed), epoch).map((v) => v.validator)
        expect(again).toEqual(once)
        expect([...once].sort()).toEqual(validators.map((v) => v.validator).sort())
      }),
      { numRuns: 200 }
    )
  })

  it("leaves out validators without stake", () => {
    const out = weightedShuffle([validator(0, 0n), validator(1, 5n), validator(2, 0n)], hashOf(1), 0)
    expect(out.map((v) => v.validator)).toEqual(["val001"])
  })

  it("depends on the seed and the epoch", () => {
    const validators = Array.from({ length: 20 }, (_, i) => validator(i, 1n))
    const order = (seed: number, epoch: number) => weightedShuffle(validators, hashOf(seed), epoch).map((v) => v.validator).join()
    expect(order(1, 0)).not.toBe(order(2, 0))
    expect(order(1, 0)).not.toBe(order(1, 1))
  })

  it("picks first in proportion to stake", () => {
    // Stakes 1 : 3 : 6. Over 6000 seeds each validator leads about 10%, 30%, 60% of the time.
    const validators = [validator(0, 1n), validator(1, 3n), validator(2, 6n)]
    const seeds = 6000
    const first = new Map<string, number>()
    for (let seed = 0; seed < seeds; seed++) {
      const top = weightedShuffle(validators, hashOf(seed), 0)[0]!.validator
      first.set(top, (first.get(top) ?? 0) + 1)
    }
    // ±3 standard deviations of a binomial(6000, p) is under ±0.02 for these p.
    expect(Math.abs(first.get("val000")! / seeds - 0.1)).toBeLessThan(0.02)
    expect(Math.abs(first.get("val001")! / seeds - 0.3)).toBeLessThan(0.02)
    expect(Math.abs(first.get("val002")! / seeds - 0.6)).toBeLessThan(0.02)
  })
})

describe("electCommittees", () => {
  it("deals committees of the configured size: disjoint when validators suffice, each its own draw when not", () => {
    fc.assert(
      fc.property(
        validatorsArb,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 10 }),
        fc.nat(),
        (validators, shardCount, committeeSize, seed) => {
          const shards = Array.from({ length: shardCount }, (_, i) => (i + 1) as ShardId)
          const elected = electCommittees({ validators, shards, committeeSize, epoch: 3, seed: hashOf(seed) })
          if (validators.length < committeeSize) {
            expect(Either.isLeft(elected) && elected.left.reason).toBe("NotEnoughValidators")
            return
          }
          const committees = Either.getOrThrow(elected)
          const seated = shards.flatMap((s) => committees.get(s)!.members.map((m) => m.validator))
          expect(seated).toHaveLength(shardCount * committeeSize)
          for (const s of shards) {
            const members = committees.get(s)!.members.map((m) => m.validator)
            expect(new Set(members).size).toBe(committeeSize) // nobody holds two seats of one committee
          }
          // Disjoint when there are validators enough for every shard; overlapping only when there are not.
          if (validators.length >= shardCount * committeeSize) expect(new Set(seated).size).toBe(seated.length)
          for (const s of shards) {
            const c = committees.get(s)!
            expect(c.shard).toBe(s)
            expect(c.epoch).toBe(3)
            expect(c.totalStake).toBe(c.members.reduce((sum, m) => sum + m.stake, 0n))
          }
        }
      ),
      { numRuns: 200 }
    )
  })

  it("refuses duplicate validators and a bad size", () => {
    const dup = [validator(0, 1n), validator(0, 2n)]
    const shards = [1 as ShardId]
    expect(Either.flip(electCommittees({ validators: dup, shards, committeeSize: 1, epoch: 0, seed: hashOf(0) })).pipe(Either.map((e) => e.reason))).toEqual(Either.right("DuplicateValidator"))
    const ok = [validator(0, 1n)]
    expect(Either.flip(electCommittees({ validators: ok, shards, committeeSize: 0, epoch: 0, seed: hashOf(0) })).pipe(Either.map((e) => e.reason))).toEqual(Either.right("BadSize"))
  })
})

describe("quorum arithmetic", () => {
  it("a quorum is strictly more than 2/3 of the stake; joining a view change strictly more than 1/3", () => {
    const c = Either.getOrThrow(makeCommittee(1 as ShardId, 0, [0, 1, 2].map((i) => validator(i, 1n))))
    expect(hasQuorum(c, 2n)).toBe(false) // exactly 2/3 is not enough
    expect(hasQuorum(c, 3n)).toBe(true)
    expect(exceeds(c, 1n, ONE_HONEST)).toBe(false)
    expect(exceeds(c, 2n, ONE_HONEST)).toBe(true)
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 1n, max: 100n }), { minLength: 1, maxLength: 20 }), fc.bigInt({ min: 0n, max: 2000n }), (stakes, stake) => {
        const committee = Either.getOrThrow(makeCommittee(1 as ShardId, 0, stakes.map((s, i) => validator(i, s))))
        expect(hasQuorum(committee, stake)).toBe(3n * stake > 2n * committee.totalStake)
      })
    )
  })

  it("leaders rotate through the committee", () => {
    const c = Either.getOrThrow(makeCommittee(1 as ShardId, 0, [0, 1, 2, 3].map((i) => validator(i, 1n))))
    expect([1, 2, 3, 4, 5].map((v) => leaderOf(c, v))).toEqual([1, 2, 3, 0, 1])
  })
})
