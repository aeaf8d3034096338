/**
 * A toy decider for the kernel's tests: one bank account. Every deposit and
 * withdrawal carries a `ref` that its event repeats, so a test can check that
 * each acknowledged command's event is in the stream exactly once.
 */
import { Either, Schema } from "effect"
import type { Decider } from "../../domain/Decider.js"

export class Opened extends Schema.TaggedClass<Opened>()("Opened", { owner: Schema.String }) {}
export class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { ref: Schema.String, amount: Schema.BigInt }) {}
export class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { ref: Schema.String, amount: Schema.BigInt }) {}
export const BankEvent = Schema.Union(Opened, Deposited, Withdrawn)
export type BankEvent = typeof BankEvent.Type

export type BankCommand =
  | { readonly _tag: "Open"; readonly owner: string }
  | { readonly _tag: "Deposit"; readonly ref: string; readonly amount: bigint }
  | { readonly _tag: "Withdraw"; readonly ref: string; readonly amount: bigint }
  /** Open and deposit in one command: two events. */
  | { readonly _tag: "OpenWith"; readonly owner: string; readonly ref: string; readonly amount: bigint }
  /** A bug: decide throws. */
  | { readonly _tag: "Poison" }

export class NotOpen extends Schema.TaggedError<NotOpen>()("NotOpen", {}) {}
export class AlreadyOpen extends Schema.TaggedError<AlreadyOpen>()("AlreadyOpen", { owner: Schema.String }) {}
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  need: Schema.BigInt,
  have: Schema.BigInt
}) {}
export type BankError = NotOpen | AlreadyOpen | InsufficientFunds

export const BankState = Schema.Struct({
  owner: Schema.NullOr(Schema.String),
  balance: Schema.BigInt,
  /** Number of deposits and withdrawals applied. */
  moves: Schema.Number
})
export type BankState = typeof BankState.Type

const ok = (...events: ReadonlyArray<BankEvent>) => Either.right(events)

export const bank: Decider<BankState, BankCommand, BankEvent, BankError> = {
  initialState: { owner: null, balance: 0n, moves: 0 },
  decide: (state, command) => {
    switch (command._tag) {
      case "Open":
        return state.owner === null ? ok(new Opened({ owner: command.owner })) : Either.left(new AlreadyOpen({ owner: state.owner }))
      case "OpenWith":
        return state.owner === null
          ? ok(new Opened({ owner: command.owner }), new Deposited({ ref: command.ref, amount: command.amount }))
          : Either.left(new AlreadyOpen({ owner: state.owner }))
      case "Deposit":
        return state.owner === null ? Either.left(new NotOpen()) : ok(new Deposited({ ref: command.ref, amount: command.amount }))
      case "Withdraw":
        if (state.owner === null) return Either.left(new NotOpen())
        return state.balance < command.amount
          ? Either.left(new InsufficientFunds({ need: command.amount, have: state.balance }))
          : ok(new Withdrawn({ ref: command.ref, amount: command.amount }))
      case "Poison":
        throw new Error("poison command")
      default: {
        const never: never = command
        return never
      }
    }
  },
  evolve: (state, event) => {
    switch (event._tag) {
      case "Opened":
        return { ...state, owner: event.owner }
      case "Deposited":
        return { ...state, balance: state.balance + event.amount, moves: state.moves + 1 }
      case "Withdrawn":
        return { ...state, balance: state.balance - event.amount, moves: state.moves + 1 }
    }
  }
}

export const deposit = (ref: string, amount = 1n): BankCommand => ({ _tag: "Deposit", ref, amount })
export const withdraw = (ref: string, amount: bigint): BankCommand => ({ _tag: "Withdraw", ref, amount })
export const open = (owner = "alice"): BankCommand => ({ _tag: "Open", owner })
