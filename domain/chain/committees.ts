/**
 * Committees as chain data: who certifies one shard's blocks in one epoch.
 *
 * Epoch 0's committee of every shard is the genesis validator set, in
 * genesis order. At the end of each epoch the beacon elects the next epoch's
 * committees from its validator registry (`electShardCommittees`: the
 * stake-weighted shuffle of `domain/consensus/committee.ts`, seeded from a
 * committed beacon block hash) and records them in its ledger
 * (`CommitteesElected`). Each shard then hands over to its new committee at
 * a block of its own that names the committee's digest (`committeeDigest`,
 * certified by the outgoing committee), so a shard's chain alone proves who
 * may certify each of its blocks: an auditor needs nothing but the genesis
 * validators and the chain.
 */
import { Either, Schema } from "effect"
import { type Hash32, keccakHex } from "./hash.js"
import { hexToBytes } from "./hex.js"
import { addressBytes } from "./keys.js"
import { encodeRlp } from "./rlp.js"
import { ShardId } from "./sharding.js"
import { BlsPublicKeyHex, GenesisValidator } from "./validators.js"
import { BLS_PUBLIC_KEY_BYTES, blsQuorumCrypto } from "../consensus/bls.js"
import { electCommittees, makeCommittee, type Committee, type CommitteeError } from "../consensus/committee.js"
import type { CommitteeVerifier } from "../consensus/quorum.js"

export const Epoch = Schema.Int.pipe(Schema.nonNegative())

/** One shard's committee for one epoch: members in seat order (seat i leads views i, i+n, …). */
export class ShardCommittee extends Schema.Class<ShardCommittee>("ShardCommittee")({
  shard: ShardId,
  epoch: Epoch,
  members: Schema.NonEmptyArray(GenesisValidator)
}) {}

/** keccak256 of the committee's canonical RLP: what a handover block's payload names. */
export const committeeDigest = (c: ShardCommittee): Hash32 =>
  keccakHex(
    encodeRlp([
      BigInt(c.shard),
      BigInt(c.epoch),
      c.members.map((m) => [addressBytes(m.address), Either.getOrThrow(hexToBytes(m.blsPublicKey, BLS_PUBLIC_KEY_BYTES)), m.stake])
    ])
  )

/** Epoch 0: every genesis validator, in genesis order. */
export const genesisCommittee = (validators: ReadonlyArray<GenesisValidator>, shard: ShardId): ShardCommittee =>
  new ShardCommittee({ shard, epoch: 0, members: validators as readonly [GenesisValidator, ...Array<GenesisValidator>] })

const consensusCommittees = new WeakMap<ShardCommittee, Committee>()

/** The consensus view of a committee (stake and decoded keys by seat); made once per committee object (the ledger asks per block). */
export const consensusCommitteeOf = (c: ShardCommittee): Committee => {
  let committee = consensusCommittees.get(c)
  if (committee === undefined) consensusCommittees.set(c, (committee = decodeCommittee(c)))
  return committee
}

const decodeCommittee = (c: ShardCommittee): Committee =>
  Either.getOrThrow(
    makeCommittee(
      c.shard,
      c.epoch,
      c.members.map((v) => ({
        validator: v.address,
        stake: v.stake,
        publicKey: Either.getOrThrow(hexToBytes(v.blsPublicKey, BLS_PUBLIC_KEY_BYTES))
      }))
    )
  )

const verifiers = new Map<string, Either.Either<CommitteeVerifier, string>>()

/**
 * The BLS verifier of a member list's keys, or why they are unusable. Made
 * once per key list and shared: decoding keys costs milliseconds, and the
 * verifier caches the certificates it checked, so the seats and ledgers of
 * one process verify a QC once between them.
 */
export const committeeVerifier = (members: ReadonlyArray<GenesisValidator>): Either.Either<CommitteeVerifier, string> => {
  const key = members.map((v) => v.blsPublicKey).join(",")
  let verifier = verifiers.get(key)
  if (verifier === undefined) {
    verifier = Either.mapLeft(
      blsQuorumCrypto.verifierFor(members.map((v) => Either.getOrThrow(hexToBytes(v.blsPublicKey, BLS_PUBLIC_KEY_BYTES)))),
      (e) => `${e.reason}: ${e.detail}`
    )
    verifiers.set(key, verifier)
  }
  return verifier
}

/** A validator the beacon's registry knows: what an election draws from. */
export interface Candidate {
  readonly address: GenesisValidator["address"]
  readonly blsPublicKey: typeof BlsPublicKeyHex.Type
  readonly stake: bigint
}

/**
 * Each shard's committee for `epoch`, elected from `candidates` by the
 * stake-weighted shuffle seeded with `seed` (a committed beacon block hash).
 * Seats: `committeeSize`, or every candidate when there are fewer.
 */
export const electShardCommittees = (params: {
  readonly candidates: ReadonlyArray<Candidate>
  readonly shards: ReadonlyArray<ShardId>
  readonly committeeSize: number
  readonly epoch: number
  readonly seed: Hash32
}): Either.Either<ReadonlyArray<ShardCommittee>, CommitteeError> => {
  const byAddress = new Map(params.candidates.map((c) => [c.address as string, c]))
  const elected = electCommittees({
    validators: params.candidates.map((c) => ({
      validator: c.address,
      stake: c.stake,
      publicKey: Either.getOrThrow(hexToBytes(c.blsPublicKey, BLS_PUBLIC_KEY_BYTES))
    })),
    shards: params.shards,
    committeeSize: Math.min(params.committeeSize, params.candidates.filter((c) => c.stake > 0n).length),
    epoch: params.epoch,
    seed: params.seed
  })
  return Either.map(elected, (committees) =>
    params.shards.map((shard) => {
      const c = committees.get(shard)!
      const members = c.members.map((m) => {
        const v = byAddress.get(m.validator)!
        return new GenesisValidator({ address: v.address, blsPublicKey: v.blsPublicKey, stake: v.stake })
      })
      return new ShardCommittee({ shard, epoch: params.epoch, members: members as [GenesisValidator, ...Array<GenesisValidator>] })
    })
  )
}
