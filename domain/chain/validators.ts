/**
 * The validator set of a BFT chain, as its genesis names it: each
 * validator's secp256k1 address (the `proposer` of the headers it leads),
 * its BLS12-381 public key (what its votes verify under) and its stake.
 *
 * Committees: every validator sits in every shard's committee, in genesis
 * order, for now (epoch 0 forever); electing committees per epoch on the
 * beacon (`domain/consensus/committee.ts` `electCommittees`) comes later.
 *
 * Decoding a committee's BLS keys costs milliseconds and a verifier keeps a
 * cache of the certificates it checked, so both are made once per key set
 * and shared: the consensus seats and the ledgers of one process verify a
 * block's QC once between them.
 */
import { Either, Schema } from "effect"
import { bytesToHex, fixedHex, hexToBytes } from "./hex.js"
import { sha256 } from "./hash.js"
import { Address, devKeyFromSeed, type PrivateKey } from "./keys.js"
import type { ShardId } from "./sharding.js"
import { PositiveAmount } from "./transaction.js"
import { BLS_PUBLIC_KEY_BYTES, blsKeyFromSeed, blsQuorumCrypto, type BlsKeyPair } from "../consensus/bls.js"
import { makeCommittee, type Committee } from "../consensus/committee.js"
import type { CommitteeVerifier } from "../consensus/quorum.js"

export const BlsPublicKeyHex = fixedHex(BLS_PUBLIC_KEY_BYTES)

export class GenesisValidator extends Schema.Class<GenesisValidator>("GenesisValidator")({
  address: Address,
  blsPublicKey: BlsPublicKeyHex,
  stake: PositiveAmount
}) {}

/** The one epoch committees have until the beacon elects them. */
export const COMMITTEE_EPOCH = 0

/** A shard's committee: every validator, in genesis order. */
export const committeeOf = (validators: ReadonlyArray<GenesisValidator>, shard: ShardId): Committee =>
  Either.getOrThrow(
    makeCommittee(
      shard,
      COMMITTEE_EPOCH,
      validators.map((v) => ({
        validator: v.address,
        stake: v.stake,
        publicKey: Either.getOrThrow(hexToBytes(v.blsPublicKey, BLS_PUBLIC_KEY_BYTES))
      }))
    )
  )

const verifiers = new Map<string, Either.Either<CommitteeVerifier, string>>()

/** The BLS verifier of a validator set's keys (made once per key set), or why the keys are unusable. */
export const committeeVerifierOf = (validators: ReadonlyArray<GenesisValidator>): Either.Either<CommitteeVerifier, string> => {
  const key = validators.map((v) => v.blsPublicKey).join(",")
  let verifier = verifiers.get(key)
  if (verifier === undefined) {
    verifier = Either.mapLeft(
      blsQuorumCrypto.verifierFor(validators.map((v) => Either.getOrThrow(hexToBytes(v.blsPublicKey, BLS_PUBLIC_KEY_BYTES)))),
      (e) => `${e.reason}: ${e.detail}`
    )
    verifiers.set(key, verifier)
  }
  return verifier
}

// ---------------------------------------------------------------- devnet keys

const DEV_VALIDATOR_SEED = "topai-dev-validator-"

export interface ValidatorKeys {
  readonly secp: PrivateKey
  readonly bls: BlsKeyPair
}

/** The deterministic, public (so: insecure) keys of devnet validator `index`. */
export const devValidatorKeys = (index: number): ValidatorKeys => {
  const seed = DEV_VALIDATOR_SEED + index
  // noble's BLS keygen wants 48 bytes of seed material.
  const material = new Uint8Array(48)
  material.set(sha256(seed, "bls-0"), 0)
  material.set(sha256(seed, "bls-1").subarray(0, 16), 32)
  return { secp: devKeyFromSeed(seed), bls: blsKeyFromSeed(material) }
}

/** Each devnet validator's stake: equal, so any 3 of 4 are a quorum. */
export const DEV_VALIDATOR_STAKE = 1_000n

export const devValidators = (count: number): ReadonlyArray<GenesisValidator> =>
  Array.from({ length: count }, (_, i) => {
    const keys = devValidatorKeys(i)
    return new GenesisValidator({
      address: keys.secp.publicKey.address,
      blsPublicKey: bytesToHex(keys.bls.publicKey),
      stake: DEV_VALIDATOR_STAKE
    })
  })
