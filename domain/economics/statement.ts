/**
 * An address's statement, read from closed ledgers only: per epoch and in
 * total. Two identities hold exactly, by construction and checked:
 *
 *   providerNet = taskMining + launchReward + serviceFees − computeFeesPaid
 *   net         = Σ credits − Σ debits
 *               = taskMining + launchReward + serviceFees + onlineMining
 *                 + computeFeesEarned + subsidy + slashCompensation
 *                 − computeFeesPaid − slashed
 *
 * `serviceFees` is what the provider earns (price − protocol fee), so
 * serviceFees − computeFeesPaid is what the escrow paid it. `slashed` is
 * counted against the worker's address (the stake is bonded for it);
 * `slashCompensation` is what the address received as a served developer or
 * a reporter. Released stake is the owner's own money coming back: not in
 * the statement.
 */
import type { Address } from "../chain/keys.js"
import type { EpochLedger } from "./events.js"
import { invariantsOf, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("statement")

export interface StatementLine {
  readonly taskMining: bigint
  readonly launchReward: bigint
  readonly serviceFees: bigint
  readonly computeFeesPaid: bigint
  readonly onlineMining: bigint
  readonly computeFeesEarned: bigint
  readonly subsidy: bigint
  readonly slashed: bigint
  readonly slashCompensation: bigint
  readonly providerNet: bigint
  readonly net: bigint
}

export interface Statement {
  readonly address: Address
  readonly epochs: ReadonlyArray<StatementLine & { readonly epoch: number }>
  readonly total: StatementLine
}

type Parts = Omit<StatementLine, "providerNet" | "net">

const zero: Parts = {
  taskMining: 0n,
  launchReward: 0n,
  serviceFees: 0n,
  computeFeesPaid: 0n,
  onlineMining: 0n,
  computeFeesEarned: 0n,
  subsidy: 0n,
  slashed: 0n,
  slashCompensation: 0n
}

const plus = (a: Parts, b: Partial<Parts>): Parts => {
  const out: Record<string, bigint> = {}
  for (const k of Object.keys(zero) as Array<keyof Parts>) out[k] = a[k] + (b[k] ?? 0n)
  return out as unknown as Parts
}

const withNets = (p: Parts): StatementLine => {
  const providerNet = p.taskMining + p.launchReward + p.serviceFees - p.computeFeesPaid
  const credits = p.taskMining + p.launchReward + p.serviceFees + p.onlineMining + p.computeFeesEarned + p.subsidy + p.slashCompensation
  const debits = p.computeFeesPaid + p.slashed
  return { ...p, providerNet, net: credits - debits }
}

const lineOf = (ledger: EpochLedger, address: Address): Parts => {
  let p = zero
  for (const e of ledger) {
    switch (e._tag) {
      case "RewardCredited": {
        if (e.to !== address) break
        const field = ({ LaunchReward: "launchReward", OnlineMining: "onlineMining", TaskMining: "taskMining", FoundationSubsidy: "subsidy" } as const)[e.kind]
        p = plus(p, { [field]: e.amount })
        break
      }
      case "Slashed":
        if (e.worker === address) p = plus(p, { slashed: e.amount })
        if (e.user === address) p = plus(p, { slashCompensation: e.toUser })
        if (e.reporter === address) p = plus(p, { slashCompensation: e.toReporter })
        break
      case "FeesRecorded":
        if (e.address === address) {
          p = plus(p, { serviceFees: e.serviceFees, computeFeesPaid: e.computeFeesPaid, computeFeesEarned: e.computeFeesEarned })
        }
        break
      case "StakeReleased":
      case "EpochClosed":
        break
    }
  }
  return p
}

const epochOf = (ledger: EpochLedger): number => {
  const last = ledger[ledger.length - 1]
  assert(last !== undefined && last._tag === "EpochClosed", "a closed ledger ends with its EpochClosed")
  return last.epoch
}

export const statementOf = (ledgers: ReadonlyArray<EpochLedger>, address: Address): Statement => {
  const parts = ledgers.map((l) => ({ epoch: epochOf(l), parts: lineOf(l, address) }))
  const total = withNets(parts.reduce((sum, x) => plus(sum, x.parts), zero))
  const epochs = parts.map((x) => ({ epoch: x.epoch, ...withNets(x.parts) }))
  assert(epochs.reduce((sum, l) => sum + l.net, 0n) === total.net, "epoch nets sum to the total")
  return { address, epochs, total }
}
