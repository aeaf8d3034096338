/** Parsing of user-typed values (keys, addresses, amounts) with clear messages. */
import { Effect, Either } from "effect"
import { hexToBytes } from "../../domain/chain/hex.js"
import { PrivateKey } from "../../domain/chain/keys.js"
import type { Address } from "../../domain/chain/keys.js"

export class BadInput extends Error {
  override readonly name = "BadInput"
}

const ADDRESS_PATTERN = /^0x[0-9a-f]{40}$/

/** Addresses are accepted in any letter case and kept in the canonical lowercase. */
export const parseAddress = (text: string, what = "address"): Effect.Effect<Address, BadInput> => {
  const lower = text.trim().toLowerCase()
  return ADDRESS_PATTERN.test(lower)
    ? Effect.succeed(lower as Address)
    : Effect.fail(new BadInput(`${what} must be 0x followed by 40 hex digits, got "${text}"`))
}

export const parsePrivateKey = (text: string): Effect.Effect<PrivateKey, BadInput> => {
  const lower = text.trim().toLowerCase()
  const bytes = hexToBytes(lower.startsWith("0x") ? lower : `0x${lower}`, 32)
  if (Either.isLeft(bytes)) return Effect.fail(new BadInput(`--key must be 32 bytes of hex (${bytes.left.message})`))
  const key = PrivateKey.fromBytes(bytes.right)
  return Either.isLeft(key) ? Effect.fail(new BadInput(`--key: ${key.left.message}`)) : Effect.succeed(key.right)
}

const WHOLE_NUMBER = /^[0-9]+$/
/** Amounts, fees and nonces are uint256 on chain. */
const UINT256_LIMIT = 1n << 256n

/**
 * A whole number of base units below 2^256; `_` separators allowed
 * (1_000_000). With `positive`, zero is refused too (a transfer's amount).
 */
export const parseAmount = (
  text: string,
  what: string,
  options: { readonly positive?: boolean } = {}
): Effect.Effect<bigint, BadInput> => {
  const digits = text.trim().replaceAll("_", "")
  if (!WHOLE_NUMBER.test(digits)) {
    return Effect.fail(new BadInput(`${what} must be a whole number of base units, got "${text}"`))
  }
  const value = BigInt(digits)
  if (options.positive === true && value === 0n) return Effect.fail(new BadInput(`${what} must be more than 0`))
  if (value >= UINT256_LIMIT) return Effect.fail(new BadInput(`${what} must be less than 2^256, got "${text}"`))
  return Effect.succeed(value)
}
