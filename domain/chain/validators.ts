/**
 * The validator set of a BFT chain, as its genesis names it: each
 * validator's secp256k1 address (the `proposer` of the headers it leads),
 * its BLS12-381 public key (what its votes verify under) and its stake.
 *
 * Committees: the genesis validators are every shard's committee in epoch
 * 0; from then on the beacon elects them (`committees.ts`).
 */
import { Schema } from "effect"
import { bytesToHex, fixedHex } from "./hex.js"
import { sha256 } from "./hash.js"
import { Address, devKeyFromSeed, type PrivateKey } from "./keys.js"
import { PositiveAmount } from "./transaction.js"
import { BLS_PUBLIC_KEY_BYTES, blsKeyFromSeed, type BlsKeyPair } from "../consensus/bls.js"

export const BlsPublicKeyHex = fixedHex(BLS_PUBLIC_KEY_BYTES)

export class GenesisValidator extends Schema.Class<GenesisValidator>("GenesisValidator")({
  address: Address,
  blsPublicKey: BlsPublicKeyHex,
  stake: PositiveAmount
}) {}

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
