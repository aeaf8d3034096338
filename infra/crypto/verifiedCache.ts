/**
 * A bounded memo of secp256k1 signature checks, keyed by the exact bytes
 * checked: (32-byte digest, 33-byte compressed public key, 64-byte compact
 * signature), concatenated. The three lengths are fixed, so the key is
 * unambiguous: a hit is only ever for the very same digest, key and signature
 * (never a hash of them), so a cached result cannot make another signature or
 * another key pass.
 *
 * Why: every validator verifies every transaction (on admission or on
 * gossip), so N seats in one process would verify each signature N times on
 * the same cores. With this memo the process verifies it once; requests for a
 * signature whose check is under way wait for that check instead of starting
 * their own (`pending`).
 *
 * Bounded FIFO: a Map keeps insertion order, the oldest entry goes first.
 * 200k entries are ~40 MB (a 129-byte one-byte string per key).
 */
import { HASH_BYTES } from "../../domain/chain/hash.js"
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, useKnownVerifications } from "../../domain/chain/keys.js"

export const VERIFIED_CACHE_MAX_DEFAULT = 200_000

const KEY_BYTES = HASH_BYTES + PUBLIC_KEY_BYTES + SIGNATURE_BYTES

export interface SignedBytes {
  readonly digest: Uint8Array
  readonly publicKey: { readonly bytes: Uint8Array }
  readonly signature: Uint8Array
}

/** Whether the parts have the only lengths a valid signature check can have (others are refused, never cached). */
export const hasSignatureShape = (signed: SignedBytes): boolean =>
  signed.digest.length === HASH_BYTES &&
  signed.publicKey.bytes.length === PUBLIC_KEY_BYTES &&
  signed.signature.length === SIGNATURE_BYTES

const scratch = Buffer.alloc(KEY_BYTES)

/** The memo key: the exact bytes, one char per byte. Only for parts of the right lengths (`hasSignatureShape`). */
export const verifiedKeyOf = (signed: SignedBytes): string => {
  scratch.set(signed.digest, 0)
  scratch.set(signed.publicKey.bytes, HASH_BYTES)
  scratch.set(signed.signature, HASH_BYTES + PUBLIC_KEY_BYTES)
  return scratch.toString("latin1")
}

/** Called with a check's outcome, or with the error that stopped it (a worker died). */
export type Waiter = (result: boolean | { readonly error: unknown }) => void

export interface VerifiedCache {
  readonly capacity: number
  readonly size: () => number
  /** The remembered outcome for exactly these bytes, if any. */
  readonly get: (key: string) => boolean | undefined
  /**
   * Join a check under way for `key` (true: `waiter` will be called when it
   * ends), or announce one (false: the caller must run it and `settle` it).
   */
  readonly join: (key: string, waiter: Waiter) => boolean
  /** The outcome of a check announced by `join`: remembered, and every waiter called. */
  readonly settle: (key: string, valid: boolean) => void
  /** A check that could not run: its waiters get the error, nothing is remembered. */
  readonly fail: (key: string, error: unknown) => void
  readonly clear: () => void
}

export const makeVerifiedCache = (capacity: number = VERIFIED_CACHE_MAX_DEFAULT): VerifiedCache => {
  const done = new Map<string, boolean>()
  const pending = new Map<string, Array<Waiter>>()
  const remember = (key: string, valid: boolean) => {
    if (capacity <= 0) return
    if (done.size >= capacity) done.delete(done.keys().next().value!)
    done.set(key, valid)
  }
  const release = (key: string, result: boolean | { readonly error: unknown }) => {
    const waiters = pending.get(key)
    pending.delete(key)
    if (waiters !== undefined) for (const w of waiters) w(result)
  }
  return {
    capacity,
    size: () => done.size,
    get: (key) => done.get(key),
    join: (key, waiter) => {
      const waiters = pending.get(key)
      if (waiters !== undefined) {
        waiters.push(waiter)
        return true
      }
      pending.set(key, [waiter])
      return false
    },
    settle: (key, valid) => {
      remember(key, valid)
      release(key, valid)
    },
    fail: (key, error) => release(key, { error }),
    clear: () => done.clear()
  }
}

/** The process's memo: what SignatureVerifierLive and SignatureVerifierInThread share. */
export const processVerifiedCache: VerifiedCache = makeVerifiedCache()

// `verifyDigest` (the ledger's checks) answers from it: what the verifier's threads checked is not checked again.
useKnownVerifications((signature, digest, publicKey) =>
  publicKey.length === PUBLIC_KEY_BYTES ? processVerifiedCache.get(verifiedKeyOf({ digest, publicKey: { bytes: publicKey }, signature })) : undefined
)
