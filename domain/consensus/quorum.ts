/**
 * Quorum certificates: a signer bitmap and one aggregate signature, checked
 * against more than 2/3 of the committee's stake.
 *
 * The signature scheme is a parameter (`QuorumCrypto`). Nodes use BLS12-381
 * (`bls.ts`): a certificate is verified with ONE pairing check of the
 * aggregate signature against the sum of the signers' public keys, decoded
 * once per committee. That check costs ~15–40 ms here, which is fine for a
 * node (once per certificate, never once per vote) but would make a
 * simulator that runs thousands of scenarios pointless. The simulator plugs
 * in a keyed-sha256 scheme with the same bitmap and threshold logic
 * (`test/simulation/macCrypto.ts`): it keeps every property the protocol
 * relies on (only the key holder can sign; an aggregate verifies for exactly
 * its signer set and message), just not public verifiability.
 *
 * The bitmap and threshold rules live here, once, for every scheme; checks
 * run in a fixed order and each failure is a typed `QuorumError`, never a
 * throw.
 */
import { Either, Schema } from "effect"
import { type Committee, hasQuorum } from "./committee.js"
import { timeoutDigest } from "./digests.js"
import type { NodeIndex, TimeoutCertificate, View } from "./types.js"

export class QuorumError extends Schema.TaggedError<QuorumError>()("QuorumError", {
  reason: Schema.Literal(
    "MalformedBitmap",
    "SignerOutOfRange",
    "DuplicateSigner",
    "BelowThreshold",
    "MalformedSignature",
    "MalformedPublicKey",
    "BadSignature"
  ),
  detail: Schema.String
}) {}

/** Verification bound to one committee's keys (decoded once when it is made). */
export interface CommitteeVerifier {
  /** One member's signature; used only to find the bad vote after an aggregate failed. */
  readonly verifyOne: (signer: NodeIndex, digest: Uint8Array, signature: Uint8Array) => boolean
  /** Combine signatures (order does not matter); a malformed one fails. */
  readonly aggregate: (signatures: ReadonlyArray<Uint8Array>) => Either.Either<Uint8Array, QuorumError>
  /** ONE check of an aggregate signature over `digest` against the signers' combined key. */
  readonly verifyAggregate: (
    signers: ReadonlyArray<NodeIndex>,
    digest: Uint8Array,
    signature: Uint8Array
  ) => Either.Either<void, QuorumError>
  /**
   * An aggregate over distinct messages: group g's signers each signed
   * `groups[g].digest`. ONE multi-pairing check (one pairing per group, plus
   * one) against each group's combined key. Groups are disjoint, digests
   * distinct (`verifyTimeoutCertificate` makes them so).
   */
  readonly verifyAggregateMulti: (
    groups: ReadonlyArray<SignerGroup>,
    signature: Uint8Array
  ) => Either.Either<void, QuorumError>
}

/** Signers that all signed one digest (a part of a multi-message aggregate). */
export interface SignerGroup {
  readonly signers: ReadonlyArray<NodeIndex>
  readonly digest: Uint8Array
}

/** A signature scheme with aggregation. */
export interface QuorumCrypto {
  readonly name: string
  /** A member's signature over a vote or timeout digest. */
  readonly sign: (secretKey: Uint8Array, digest: Uint8Array) => Uint8Array
  /** Decode and check one committee's public keys, in member order. */
  readonly verifierFor: (publicKeys: ReadonlyArray<Uint8Array>) => Either.Either<CommitteeVerifier, QuorumError>
}

/** The signer set and aggregate of a QC or TC. */
export interface Certificate {
  readonly signers: Uint8Array
  readonly signature: Uint8Array
}

export interface PartialSignature {
  readonly signer: NodeIndex
  readonly signature: Uint8Array
}

// ---------------------------------------------------------------------------
// Bitmaps

export const bitmapBytes = (memberCount: number): number => Math.ceil(memberCount / 8)

export const bitmapOf = (memberCount: number, signers: Iterable<NodeIndex>): Uint8Array => {
  const out = new Uint8Array(bitmapBytes(memberCount))
  for (const i of signers) out[i >> 3]! |= 1 << (i & 7)
  return out
}

export const emptyBitmap = (memberCount: number): Uint8Array => new Uint8Array(bitmapBytes(memberCount))

/** The signers a bitmap names, in index order, or why it is not a bitmap of this committee. */
export const signersOf = (
  memberCount: number,
  bitmap: Uint8Array
): Either.Either<ReadonlyArray<NodeIndex>, QuorumError> => {
  if (bitmap.length !== bitmapBytes(memberCount)) {
    return Either.left(
      new QuorumError({
        reason: "MalformedBitmap",
        detail: `${bitmap.length} bytes for ${memberCount} members (want ${bitmapBytes(memberCount)})`
      })
    )
  }
  const out: Array<NodeIndex> = []
  for (let byte = 0; byte < bitmap.length; byte++) {
    const bits = bitmap[byte]!
    if (bits === 0) continue
    for (let bit = 0; bit < 8; bit++) {
      if ((bits & (1 << bit)) === 0) continue
      const i = byte * 8 + bit
      if (i >= memberCount) {
        return Either.left(new QuorumError({ reason: "SignerOutOfRange", detail: `bit ${i} of ${memberCount} members` }))
      }
      out.push(i)
    }
  }
  return Either.right(out)
}

export const stakeOf = (committee: Committee, signers: Iterable<NodeIndex>): bigint => {
  let stake = 0n
  for (const i of signers) stake += committee.members[i]!.stake
  return stake
}

// ---------------------------------------------------------------------------
// Certificates

const checkThreshold = (committee: Committee, signers: ReadonlyArray<NodeIndex>): Either.Either<void, QuorumError> => {
  const stake = stakeOf(committee, signers)
  if (hasQuorum(committee, stake)) return Either.void
  return Either.left(
    new QuorumError({
      reason: "BelowThreshold",
      detail: `${signers.length} signers with stake ${stake} of ${committee.totalStake}`
    })
  )
}

/**
 * Verify a certificate over `digest`, in order: the bitmap is this
 * committee's, its signers hold a quorum of the stake, and the aggregate
 * signature verifies against their combined key (one check).
 */
export const verifyCertificate = (
  committee: Committee,
  verifier: CommitteeVerifier,
  digest: Uint8Array,
  certificate: Certificate
): Either.Either<void, QuorumError> =>
  Either.flatMap(signersOf(committee.members.length, certificate.signers), (signers) =>
    Either.flatMap(checkThreshold(committee, signers), () =>
      verifier.verifyAggregate(signers, digest, certificate.signature)
    )
  )

/**
 * Build a certificate from partial signatures, checking it once as a whole:
 * signers in range and distinct, a quorum of stake, and the aggregate
 * verifies. On `BadSignature` the caller finds the culprits with
 * `badSigners` (one check per vote: only on that rare path).
 */
export const assembleCertificate = (
  committee: Committee,
  verifier: CommitteeVerifier,
  digest: Uint8Array,
  partials: ReadonlyArray<PartialSignature>
): Either.Either<Certificate, QuorumError> =>
  Either.flatMap(distinctSigners(committee, partials), (signers) =>
    Either.flatMap(checkThreshold(committee, signers), () =>
    Either.flatMap(
      verifier.aggregate(partials.map((p) => p.signature)),
      (signature): Either.Either<Certificate, QuorumError> =>
        Either.map(verifier.verifyAggregate(signers, digest, signature), () => ({
          signers: bitmapOf(committee.members.length, signers),
          signature
        }))
    )
  ))

/** The partials' signers, in order, each in the committee and there once; or why not. */
const distinctSigners = (
  committee: Committee,
  partials: ReadonlyArray<PartialSignature>
): Either.Either<ReadonlyArray<NodeIndex>, QuorumError> => {
  const seen = new Set<NodeIndex>()
  for (const p of partials) {
    if (!Number.isInteger(p.signer) || p.signer < 0 || p.signer >= committee.members.length) {
      return Either.left(new QuorumError({ reason: "SignerOutOfRange", detail: `signer ${p.signer} of ${committee.members.length}` }))
    }
    if (seen.has(p.signer)) return Either.left(new QuorumError({ reason: "DuplicateSigner", detail: `signer ${p.signer}` }))
    seen.add(p.signer)
  }
  return Either.right([...seen].sort((a, b) => a - b))
}

/** The partial signatures that do not verify on their own. */
export const badSigners = (
  verifier: CommitteeVerifier,
  digest: Uint8Array,
  partials: ReadonlyArray<PartialSignature>
): ReadonlyArray<NodeIndex> => partials.filter((p) => !verifier.verifyOne(p.signer, digest, p.signature)).map((p) => p.signer)

// ---------------------------------------------------------------------------
// Timeout certificates: one aggregate over (view, highQcView) messages

const bad = (reason: QuorumError["reason"], detail: string) => Either.left(new QuorumError({ reason, detail }))

/** Signers grouped by the highest-QC view they signed, or why `highQcViews` does not fit them. */
const timeoutGroups = (
  committee: Committee,
  tc: Pick<TimeoutCertificate, "view" | "highQcViews">,
  signers: ReadonlyArray<NodeIndex>
): Either.Either<ReadonlyArray<SignerGroup>, QuorumError> => {
  const views: unknown = tc.highQcViews
  if (!Array.isArray(views) || views.length !== signers.length) {
    return bad("MalformedBitmap", `${Array.isArray(views) ? views.length : "no"} high-QC views for ${signers.length} signers`)
  }
  const byView = new Map<View, Array<NodeIndex>>()
  for (let k = 0; k < signers.length; k++) {
    const v: unknown = views[k]
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= tc.view) {
      return bad("MalformedSignature", `high-QC view ${String(v)} in a timeout certificate of view ${tc.view}`)
    }
    const group = byView.get(v)
    if (group === undefined) byView.set(v, [signers[k]!])
    else group.push(signers[k]!)
  }
  return Either.right(
    [...byView].map(([v, members]) => ({
      signers: members,
      digest: timeoutDigest(committee.shard, committee.epoch, tc.view, v)
    }))
  )
}

/**
 * Verify a TC, in order: the bitmap is this committee's, its signers hold a
 * quorum of the stake, one high-QC view below `tc.view` per signer, and the
 * aggregate verifies over each signer's (view, highQcView) message (one
 * multi-pairing check).
 */
export const verifyTimeoutCertificate = (
  committee: Committee,
  verifier: CommitteeVerifier,
  tc: TimeoutCertificate
): Either.Either<void, QuorumError> => {
  if (!Number.isSafeInteger(tc.view) || tc.view < 1) return bad("MalformedBitmap", `timeout certificate of view ${tc.view}`)
  return Either.flatMap(signersOf(committee.members.length, tc.signers), (signers) =>
    Either.flatMap(checkThreshold(committee, signers), () =>
      Either.flatMap(timeoutGroups(committee, tc, signers), (groups) => verifier.verifyAggregateMulti(groups, tc.signature))
    )
  )
}

/** A member's timeout signature over (view, highQcView). */
export interface TimeoutPartial extends PartialSignature {
  readonly highQcView: View
}

/** Build a TC from timeout signatures, checked once as a whole (as `assembleCertificate`). */
export const assembleTimeoutCertificate = (
  committee: Committee,
  verifier: CommitteeVerifier,
  view: View,
  partials: ReadonlyArray<TimeoutPartial>
): Either.Either<TimeoutCertificate, QuorumError> =>
  Either.flatMap(distinctSigners(committee, partials), (signers) => {
    const sorted = [...partials].sort((a, b) => a.signer - b.signer)
    return Either.flatMap(verifier.aggregate(sorted.map((p) => p.signature)), (signature) => {
      const tc: TimeoutCertificate = {
        view,
        signers: bitmapOf(committee.members.length, signers),
        highQcViews: sorted.map((p) => p.highQcView),
        signature
      }
      return Either.map(verifyTimeoutCertificate(committee, verifier, tc), () => tc)
    })
  })

/** The timeout signatures that do not verify on their own. */
export const badTimeoutSigners = (
  committee: Committee,
  verifier: CommitteeVerifier,
  view: View,
  partials: ReadonlyArray<TimeoutPartial>
): ReadonlyArray<NodeIndex> =>
  partials
    .filter(
      (p) =>
        !Number.isSafeInteger(p.highQcView) ||
        p.highQcView < 0 ||
        p.highQcView >= view ||
        !verifier.verifyOne(p.signer, timeoutDigest(committee.shard, committee.epoch, view, p.highQcView), p.signature)
    )
    .map((p) => p.signer)

/** The highest of a TC's high-QC views: a block justified by the TC must carry a QC at least this high. */
export const maxHighQcView = (tc: TimeoutCertificate): View => Math.max(0, ...tc.highQcViews)
