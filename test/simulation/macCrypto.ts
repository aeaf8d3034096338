/**
 * A cheap stand-in for BLS in the simulator: keyed sha256 with the same
 * bitmap and threshold logic (`domain/consensus/quorum.ts`).
 *
 *   publicKey       = sha256("topai/sim/pk"  ‖ secret)
 *   sign(digest)    = sha256("topai/sim/sig" ‖ secret ‖ digest)
 *   aggregate(sigs) = XOR of the signatures (over one digest, or over each
 *                     signer's own digest for a TC: `verifyAggregateMulti`)
 *
 * A real BLS verification costs ~15–40 ms here; a simulated run checks
 * thousands of certificates, so BLS would cap the simulator at a handful of
 * scenarios a minute. What the protocol relies on is kept: only the holder of
 * a secret can produce its signatures (a Byzantine twin signs with its own
 * key and nobody else's), an aggregate verifies for exactly the signer set
 * and digest it was made from, and malformed bytes are refused. What is lost
 * is public verifiability: verifying needs the signers' secrets, held here by
 * a `MacKeyring` that plays the trusted setup and is only reachable from the
 * verifier, never from a node's code. Nodes and the unit tests of QCs use the
 * real BLS scheme (`domain/consensus/bls.ts`).
 */
import { Either } from "effect"
import { sha256 } from "../../domain/chain/hash.js"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { CommitteeVerifier, QuorumCrypto, SignerGroup } from "../../domain/consensus/quorum.js"
import { QuorumError } from "../../domain/consensus/quorum.js"

const MAC_BYTES = 32
/** How many verified aggregates a committee verifier remembers. */
const VERIFIED_CACHE_MAX = 4096

export interface MacKey {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

export const macKeyFromSeed = (seed: string): MacKey => {
  const secretKey = sha256("topai/sim/secret", seed)
  return { secretKey, publicKey: sha256("topai/sim/pk", secretKey) }
}

const mac = (secretKey: Uint8Array, digest: Uint8Array): Uint8Array => sha256("topai/sim/sig", secretKey, digest)

/** The simulation's trusted setup: public key → secret, for verification only. */
export class MacKeyring {
  private readonly secrets = new Map<string, Uint8Array>()
  add(key: MacKey): void {
    this.secrets.set(bytesToHex(key.publicKey), key.secretKey)
  }
  secretOf(publicKey: Uint8Array): Uint8Array | undefined {
    return this.secrets.get(bytesToHex(publicKey))
  }
}

const xorInto = (acc: Uint8Array, x: Uint8Array): void => {
  for (let i = 0; i < MAC_BYTES; i++) acc[i]! ^= x[i]!
}

const malformed = (bytes: Uint8Array): QuorumError | undefined =>
  bytes.length === MAC_BYTES ? undefined : new QuorumError({ reason: "MalformedSignature", detail: `${bytes.length} bytes` })

export const macQuorumCrypto = (keyring: MacKeyring): QuorumCrypto => ({
  name: "keyed-sha256 (simulation only)",
  sign: mac,
  verifierFor: (publicKeys) => {
    const secrets: Array<Uint8Array> = []
    for (const [i, pk] of publicKeys.entries()) {
      const secret = keyring.secretOf(pk)
      if (secret === undefined) {
        return Either.left(new QuorumError({ reason: "MalformedPublicKey", detail: `member ${i}: unknown key` }))
      }
      secrets.push(secret)
    }
    const verified = new Set<string>()
    const verifier: CommitteeVerifier = {
      verifyOne: (signer, digest, signature) => {
        const secret = secrets[signer]
        if (secret === undefined || malformed(signature) !== undefined) return false
        const expected = mac(secret, digest)
        for (let i = 0; i < MAC_BYTES; i++) if (expected[i] !== signature[i]) return false
        return true
      },
      aggregate: (signatures) => {
        if (signatures.length === 0) return Either.left(new QuorumError({ reason: "BelowThreshold", detail: "no signatures" }))
        const acc = new Uint8Array(MAC_BYTES)
        for (const sig of signatures) {
          const bad = malformed(sig)
          if (bad !== undefined) return Either.left(bad)
          xorInto(acc, sig)
        }
        return Either.right(acc)
      },
      verifyAggregate: (signers, digest, signature) => verifyGroups([{ signers, digest }], signature),
      verifyAggregateMulti: (groups, signature) => verifyGroups(groups, signature)
    }
    function verifyGroups(groups: ReadonlyArray<SignerGroup>, signature: Uint8Array): Either.Either<void, QuorumError> {
      const bad = malformed(signature)
      if (bad !== undefined) return Either.left(bad)
      if (groups.length === 0 || groups.some((g) => g.signers.length === 0)) {
        return Either.left(new QuorumError({ reason: "BelowThreshold", detail: "no signers" }))
      }
      // The committee's nodes share this verifier: each certificate is recomputed once, not once per node.
      const memo = `${groups.map((g) => `${g.signers.join(",")}|${bytesToHex(g.digest)}`).join(";")}|${bytesToHex(signature)}`
      if (verified.has(memo)) return Either.void
      const acc = new Uint8Array(MAC_BYTES)
      let signerCount = 0
      for (const g of groups) {
        for (const i of g.signers) {
          const secret = secrets[i]
          if (secret === undefined) {
            return Either.left(new QuorumError({ reason: "SignerOutOfRange", detail: `signer ${i} of ${secrets.length}` }))
          }
          xorInto(acc, mac(secret, g.digest))
          signerCount++
        }
      }
      for (let i = 0; i < MAC_BYTES; i++) {
        if (acc[i] !== signature[i]) {
          return Either.left(new QuorumError({ reason: "BadSignature", detail: `aggregate of ${signerCount} signers` }))
        }
      }
      if (verified.size >= VERIFIED_CACHE_MAX) verified.clear()
      verified.add(memo)
      return Either.void
    }
    return Either.right(verifier)
  }
})
