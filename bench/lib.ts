/**
 * The shared benchmark harness: time N operations, take the median of
 * repeats, compare with a baseline measured in the same run, print one line
 * per result and keep it as JSON in bench/results/<name>.json.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { performance } from "node:perf_hooks"
import { devAccounts, type GenesisConfig } from "../domain/chain/genesis.js"
import { signTransaction, TransactionBody, type Transaction } from "../domain/chain/transaction.js"

export const RESULTS_DIR = fileURLToPath(new URL("./results", import.meta.url))

const MS_PER_SECOND = 1_000

/** Operations per second of one run of `fn`, which performs `ops` operations. */
export const opsPerSecond = async (ops: number, fn: () => unknown): Promise<number> => {
  const start = performance.now()
  await fn()
  const elapsedMs = performance.now() - start
  return (ops * MS_PER_SECOND) / elapsedMs
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The `p`-th percentile (nearest rank) of `values`; NaN when there are none. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

/** Every dev account of `genesis` sends `perAccount` transfers of 1 base unit (nonces from `nonceBase`) to the next account. */
export const makeTransfers = (
  genesis: GenesisConfig,
  options: { readonly nonceBase: bigint; readonly perAccount: number; readonly fee: bigint }
): ReadonlyArray<ReadonlyArray<Transaction>> => {
  const accounts = devAccounts(genesis)
  return accounts.map((from, i) =>
    Array.from({ length: options.perAccount }, (_, k) =>
      signTransaction(
        new TransactionBody({
          chainId: genesis.chainId,
          nonce: options.nonceBase + BigInt(k),
          fee: options.fee,
          payload: { kind: "transfer", to: accounts[(i + 1) % accounts.length]!.address, amount: 1n }
        }),
        from.key
      )
    )
  )
}

/** Runs `measure` `repeats` times and returns the median and every sample. */
export const medianOf = async (
  repeats: number,
  measure: (repeat: number) => Promise<number>
): Promise<{ readonly median: number; readonly samples: ReadonlyArray<number> }> => {
  const samples: Array<number> = []
  for (let repeat = 0; repeat < repeats; repeat++) samples.push(await measure(repeat))
  return { median: median(samples), samples }
}

/**
 * Measures a subject and its baseline alternately (subject, baseline,
 * subject, ...) so drift on a noisy machine hits both alike. Repeat numbers
 * passed to the callbacks are negative for warm-up rounds.
 */
export const compare = async (
  repeats: number,
  subject: (repeat: number) => Promise<number>,
  baseline: (repeat: number) => Promise<number>,
  options?: { readonly warmups?: number | undefined }
) => {
  // Unrecorded rounds first, so JIT and caches warm both sides alike.
  for (let warmup = 0; warmup < (options?.warmups ?? 0); warmup++) {
    await subject(-1 - warmup)
    await baseline(-1 - warmup)
  }
  const subjectSamples: Array<number> = []
  const baselineSamples: Array<number> = []
  for (let repeat = 0; repeat < repeats; repeat++) {
    subjectSamples.push(await subject(repeat))
    baselineSamples.push(await baseline(repeat))
  }
  return {
    subject: { median: median(subjectSamples), samples: subjectSamples },
    baseline: { median: median(baselineSamples), samples: baselineSamples }
  }
}

/** What a result must reach: a ratio to its baseline, an absolute rate, or both. */
export interface Target {
  readonly ratio?: number | undefined
  readonly opsPerSecond?: number | undefined
}

export interface BenchResult {
  readonly name: string
  readonly unit: string
  readonly opsPerSecond: number
  readonly baselineOpsPerSecond: number
  readonly ratio: number
  readonly target: Target
  readonly pass: boolean
  readonly samples: ReadonlyArray<number>
  readonly baselineSamples: ReadonlyArray<number>
  readonly details?: Record<string, unknown> | undefined
  readonly measuredAt: string
}

const format = (n: number) => Math.round(n).toLocaleString("en-US")

const describeTarget = (target: Target, unit: string) =>
  [
    target.ratio !== undefined ? `ratio ≥ ${target.ratio}` : undefined,
    target.opsPerSecond !== undefined ? `≥ ${format(target.opsPerSecond)} ${unit}/s` : undefined
  ]
    .filter((part) => part !== undefined)
    .join(", ") || "none"

/** Prints `name: X ops/s vs baseline Y ops/s = ratio R (target ...)` and writes the JSON file. */
export const report = (input: {
  readonly name: string
  readonly unit?: string | undefined
  readonly subject: { readonly median: number; readonly samples: ReadonlyArray<number> }
  readonly baseline: { readonly median: number; readonly samples: ReadonlyArray<number> }
  readonly target: Target
  readonly details?: Record<string, unknown> | undefined
}): BenchResult => {
  const unit = input.unit ?? "ops"
  const ratio = input.subject.median / input.baseline.median
  const pass =
    (input.target.ratio === undefined || ratio >= input.target.ratio) &&
    (input.target.opsPerSecond === undefined || input.subject.median >= input.target.opsPerSecond)
  const result: BenchResult = {
    name: input.name,
    unit,
    opsPerSecond: input.subject.median,
    baselineOpsPerSecond: input.baseline.median,
    ratio,
    target: input.target,
    pass,
    samples: input.subject.samples,
    baselineSamples: input.baseline.samples,
    details: input.details,
    measuredAt: new Date().toISOString()
  }
  console.log(
    `${input.name}: ${format(result.opsPerSecond)} ${unit}/s vs baseline ${format(result.baselineOpsPerSecond)} ${unit}/s` +
      ` = ratio ${ratio.toFixed(2)} (target ${describeTarget(input.target, unit)}) ${pass ? "PASS" : "MISS"}`
  )
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, `${input.name}.json`), `${JSON.stringify(result, null, 2)}\n`)
  return result
}

/** A benchmark module, as bench/run.ts loads it. */
export interface BenchModule {
  readonly run: () => Promise<ReadonlyArray<BenchResult>>
}
