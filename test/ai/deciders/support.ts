/**
 * Fixtures and the given / when / then harness for the AI shard's deciders.
 * `then` also folds the decided events onto the given state, so every happy
 * path checks that evolve accepts what decide emits.
 */
import { Either, Schema } from "effect"
import { expect } from "vitest"
import { fold, type Decider } from "../../../domain/Decider.js"
import { sha256, type Hash32 } from "../../../domain/chain/hash.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { Address } from "../../../domain/chain/keys.js"

/** A stable address per label. */
export const address = (label: string): Address => bytesToHex(sha256(`address:${label}`).subarray(0, 20)) as Address
/** A stable hash per label. */
export const hash = (label: string): Hash32 => bytesToHex(sha256(label)) as Hash32
/** 64 bytes of hex, the shape of a compact secp256k1 signature. */
export const signature = (label: string): string => bytesToHex(new Uint8Array([...sha256(`sig-r:${label}`), ...sha256(`sig-s:${label}`)]))

export const T0 = 1_700_000_000_000

export const tags = (events: ReadonlyArray<{ readonly _tag: string }>) => events.map((e) => e._tag)

interface Tagged {
  readonly _tag: string
}

interface Rejection extends Tagged {
  readonly reason: string
}

export const deciderSpec = <S, C, E, Err extends Rejection>(decider: Decider<S, C, E, Err>) => ({
  given: (events: ReadonlyArray<E>) => ({
    when: (command: C) => {
      const state = fold(decider.evolve, decider.initialState, events)
      const result = decider.decide(state, command)
      return {
        /** Events; `check` also gets the state after them. */
        then: (check: (events: ReadonlyArray<E>, after: S) => void) => {
          if (Either.isLeft(result)) throw new Error(`expected events, got ${result.left._tag} ${result.left.reason}`)
          check(result.right, fold(decider.evolve, state, result.right))
        },
        /** Exactly this error, and nothing else. */
        thenRejects: (tag: Err["_tag"], reason: Err["reason"]) => {
          if (Either.isRight(result)) throw new Error(`expected ${tag} ${reason}, got events ${tags(result.right as ReadonlyArray<Tagged>)}`)
          expect([result.left._tag, result.left.reason]).toEqual([tag, reason])
        }
      }
    }
  })
})

/** Decide then fold; fails the test on an error. */
export const run = <S, C, E, Err extends Rejection>(
  decider: Decider<S, C, E, Err>,
  state: S,
  command: C
): { readonly state: S; readonly events: ReadonlyArray<E> } => {
  const r = decider.decide(state, command)
  if (Either.isLeft(r)) throw new Error(`unexpected ${r.left._tag} ${r.left.reason}`)
  return { state: fold(decider.evolve, state, r.right), events: r.right }
}

/** Runs the commands in order from the initial state; all must succeed. */
export const runAll = <S, C, E, Err extends Rejection>(decider: Decider<S, C, E, Err>, commands: ReadonlyArray<C>) => {
  let state = decider.initialState
  const events: Array<E> = []
  for (const c of commands) {
    const r = run(decider, state, c)
    state = r.state
    events.push(...r.events)
  }
  return { state, events }
}

/** The events as the store keeps them: Schema-encoded JSON, decoded again. */
export const throughJson = <A, I>(schema: Schema.Schema<A, I>, events: ReadonlyArray<A>): ReadonlyArray<A> => {
  const encode = Schema.encodeSync(schema)
  const decode = Schema.decodeUnknownSync(schema)
  return events.map((e) => decode(JSON.parse(JSON.stringify(encode(e)))))
}
