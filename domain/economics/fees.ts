/**
 * A settled task's fees, paid live from the escrow account (where the
 * developer's price was captured).
 *
 *   protocolFee = ⌊price × protocolFeePpm / 10^6⌋    → burn or treasury
 *   serviceFee  = price − protocolFee                 the provider's earning
 *   computeFee  = ⌊gpuUnitsMilli × execMs × computeFeePerUnitSecond / 10^6⌋ per worker
 *   providerNet = serviceFee − Σ computeFee            → provider
 *
 * The cap rule is PAUSE. When the compute fees exceed the service fee (a
 * model priced below what its compute costs), each compute fee is scaled
 * down pro rata, ⌊fee × serviceFee / Σ fees⌋, so they sum to at most the
 * service fee and the provider nets ≥ 0 (the floor's dust stays with the
 * provider). The task is `capped` and the model is paused (no new tasks)
 * until its provider reprices it (`ModelRepriced`). Workers are never paid
 * out of the provider's other money, and a developer never pays more than
 * the price they were quoted.
 */
import type { Address } from "../chain/keys.js"
import { UNIT_MS_PER_UNIT_SECOND, type EconomicsConfig } from "./config.js"
import { ppmOf, sumOf } from "./proRata.js"
import { invariantsOf, type Assert } from "../assert.js"

const assert: Assert = invariantsOf("fees")

export interface WorkerUsage {
  readonly worker: Address
  readonly gpuUnitsMilli: bigint
  readonly execMs: number
}

export interface TaskFees {
  readonly price: bigint
  readonly protocolFee: bigint
  readonly serviceFee: bigint
  /** What each worker is paid, in the order given (a worker listed twice is paid twice). */
  readonly computeFees: ReadonlyArray<{ readonly worker: Address; readonly amount: bigint }>
  readonly computeFeesTotal: bigint
  readonly providerNet: bigint
  /** The compute fees were scaled down to the service fee: the model pauses. */
  readonly capped: boolean
}

/** gpuUnitsMilli × ms: the unit of work (10^6 of them are one GPU-unit-second). */
export const unitMs = (gpuUnitsMilli: bigint, execMs: number): bigint => gpuUnitsMilli * BigInt(Math.max(0, Math.trunc(execMs)))

export const computeFeeOf = (config: EconomicsConfig, w: WorkerUsage): bigint =>
  (unitMs(w.gpuUnitsMilli, w.execMs) * config.computeFeePerUnitSecond) / UNIT_MS_PER_UNIT_SECOND

export const taskFees = (config: EconomicsConfig, price: bigint, workers: ReadonlyArray<WorkerUsage>): TaskFees => {
  assert(price >= 0n, `price ${price}`)
  const protocolFee = ppmOf(price, config.protocolFeePpm)
  const serviceFee = price - protocolFee
  const full = workers.map((w) => ({ worker: w.worker, amount: computeFeeOf(config, w) }))
  const fullTotal = sumOf(full.map((f) => f.amount))
  const capped = fullTotal > serviceFee
  const computeFees = capped ? full.map((f) => ({ worker: f.worker, amount: (f.amount * serviceFee) / fullTotal })) : full
  const computeFeesTotal = sumOf(computeFees.map((f) => f.amount))
  const providerNet = serviceFee - computeFeesTotal
  assert(providerNet >= 0n, `provider net ${providerNet}`)
  assert(protocolFee + computeFeesTotal + providerNet === price, "fees sum to the price")
  return { price, protocolFee, serviceFee, computeFees, computeFeesTotal, providerNet, capped }
}
