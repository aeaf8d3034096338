/**
 * GPU classes: the billing units of compute (DESIGN.md, "Economics"). Each
 * class has a coefficient, configured in genesis; a worker offers
 * `devices × coefficient` GPU units, and a model's minimum class is met by
 * every class whose coefficient is at least as large.
 *
 * Coefficients are kept exactly, in thousandths (milli-units, bigint):
 * CPU = 0.1 is 100n, H100 = 10 is 10_000n. No float ever touches money or
 * units.
 */
import { Schema } from "effect"

/** Thousandths per unit: a coefficient of 1 is 1_000n milli-units. */
export const MILLI_PER_UNIT = 1_000n

export const GpuClass = Schema.NonEmptyTrimmedString
export type GpuClass = typeof GpuClass.Type

/** A class's coefficient in milli-units (> 0). */
export const CoefficientMilli = Schema.BigInt.pipe(Schema.positiveBigInt())

/** Class name → coefficient in milli-units; the genesis config holds one. */
export const GpuClassTable = Schema.Record({ key: GpuClass, value: CoefficientMilli })
export type GpuClassTable = typeof GpuClassTable.Type

/** DESIGN.md, "Economics": "H100 = 10, A100 = 6, RTX 4090 = 3, CPU = 0.1, configurable". */
export const DEFAULT_GPU_CLASSES: GpuClassTable = {
  H100: 10_000n,
  A100: 6_000n,
  RTX4090: 3_000n,
  CPU: 100n
}

/** The coefficient of `gpuClass`, or undefined when the table has no such class (own keys only). */
export const coefficientOf = (table: GpuClassTable, gpuClass: string): bigint | undefined =>
  Object.hasOwn(table, gpuClass) ? table[gpuClass] : undefined

/** GPU units (milli) a worker offers: devices × coefficient. */
export const gpuUnitsMilli = (coefficientMilli: bigint, devices: number): bigint => coefficientMilli * BigInt(devices)

/** Whether `gpuClass` meets `minGpuClass` (both in the table): its coefficient is at least the minimum's. */
export const meetsClass = (table: GpuClassTable, gpuClass: string, minGpuClass: string): boolean => {
  const have = coefficientOf(table, gpuClass)
  const need = coefficientOf(table, minGpuClass)
  return have !== undefined && need !== undefined && have >= need
}
