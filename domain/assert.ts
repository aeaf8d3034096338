/**
 * Assertions that state invariants where they hold (TigerBeetle's habit).
 * A broken invariant is a bug or a corrupt stream, never bad input: it
 * throws, so a replay stops instead of producing a wrong state.
 */

export type Assert = (condition: boolean, what: string) => asserts condition

/** An assert whose failures name what was violated, e.g. `invariantsOf("ledger")`. */
export const invariantsOf =
  (scope: string): Assert =>
  (condition, what) => {
    if (!condition) throw new Error(`${scope} invariant violated: ${what}`)
  }

/** The `default` of an exhaustive switch: the type checker proves it unreachable. */
export const unreachable = (value: never, what: string): never => {
  throw new Error(`unknown ${what}: ${JSON.stringify(value)}`)
}
