/**
 * `npm run econ-sim -- --epochs N --workers W --models M --seed S [--csv FILE]`:
 * a deterministic economy workload through the real actors on an in-memory
 * event store (econWorkload.ts); prints per-epoch totals (in tokens, 6
 * decimals) as an aligned table, then the same in base units as CSV (or
 * writes the CSV to FILE).
 */
import { writeFileSync } from "node:fs"
import { Effect, Logger, LogLevel } from "effect"
import { MemoryEventStore } from "../infra/eventstore/MemoryEventStore.js"
import { runEconSim, totalsCsv, totalsTable, type EconSimOptions } from "./econWorkload.js"

const USAGE = "usage: npm run econ-sim -- --epochs N --workers W --models M --seed S [--csv FILE]"

const fail = (message: string): never => {
  console.error(`error: ${message}\n${USAGE}`)
  process.exit(1)
}

const parseArgs = (argv: ReadonlyArray<string>): EconSimOptions & { readonly csv: string | undefined } => {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--help" || a === "-h") {
      console.log(USAGE)
      process.exit(0)
    }
    if (!a.startsWith("--")) fail(`unexpected argument "${a}"`)
    const [k, inline] = a.slice(2).split("=", 2) as [string, string | undefined]
    const v = inline ?? argv[++i]
    if (v === undefined) fail(`--${k} needs a value`)
    values.set(k, v!)
  }
  const known = new Set(["epochs", "workers", "models", "seed", "csv"])
  for (const k of values.keys()) if (!known.has(k)) fail(`unknown option --${k}`)
  const int = (k: string, def: number, min: number, max: number) => {
    const text = values.get(k)
    if (text === undefined) return def
    const n = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) fail(`--${k} must be a whole number from ${min} to ${max}, got "${text}"`)
    return n
  }
  return {
    epochs: int("epochs", 5, 1, 10_000),
    workers: int("workers", 4, 0, 1_000),
    models: int("models", 2, 0, 1_000),
    seed: int("seed", 1, 0, 2 ** 32 - 1),
    csv: values.get("csv")
  }
}

const o = parseArgs(process.argv.slice(2))
const started = performance.now()
const rows = await Effect.runPromise(
  runEconSim(o).pipe(Effect.scoped, Effect.provide(MemoryEventStore.layer), Logger.withMinimumLogLevel(LogLevel.Warning))
)
console.log(`econ-sim: ${o.epochs} epochs, ${o.workers} workers, ${o.models} models, seed ${o.seed} (amounts in tokens)`)
console.log(totalsTable(rows))
const csv = totalsCsv(rows)
if (o.csv === undefined) {
  console.log("\nCSV (base units):")
  process.stdout.write(csv)
} else {
  writeFileSync(o.csv, csv)
  console.log(`CSV (base units) written to ${o.csv}`)
}
console.error(`(${Math.round(performance.now() - started)} ms)`)
