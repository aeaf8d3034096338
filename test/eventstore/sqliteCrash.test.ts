/**
 * Crash atomicity of the SQLite store (RELIABILITY item 3): a real child
 * process runs a bank workload and is killed with SIGKILL at random times;
 * after every kill the file must hold whole batches only, and the total must
 * hold. Randomness is seeded, so a failure replays with the same kill delays.
 */
import { Chunk, Effect, Random, Stream } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"
import { findChainBreak } from "../../infra/eventstore/RawEventRow.js"
import { readRawRows } from "../../infra/eventstore/sqliteRaw.js"
import { ACCOUNTS, BANK_STREAM, OPENING_BALANCE, READY_LINE } from "./bankWorker.js"
import { tempDir } from "./tempDir.js"

const WORKER = fileURLToPath(new URL("./bankWorker.ts", import.meta.url))
const SEED = 7_357
const KILLS = 5
/** Kill delay after the worker is ready, in ms: long enough for hundreds of appends. */
const KILL_DELAY_MS_MIN = 20
const KILL_DELAY_MS_MAX = 250
/** The first run is killed this soon after spawning, often before it is ready (during open). */
const EARLY_KILL_DELAY_MS_MAX = 600
const WORKER_START_TIMEOUT_MS = 15_000
const CRASH_TEST_TIMEOUT_MS = 50_000

interface Movement {
  readonly transfer: string
  readonly account: number
  readonly amount: number
}

/** Runs the worker, kills it with SIGKILL `delayMs` after it is ready (or after spawn, if `early`). */
const runAndKill = (filename: string, seed: number, delayMs: number, early: boolean) =>
  Effect.async<{ readonly ready: boolean }, Error>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, filename, String(seed)], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let ready = false
    let stderr = ""
    const kill = () => child.kill("SIGKILL")
    const startTimer = setTimeout(kill, early ? delayMs : WORKER_START_TIMEOUT_MS)
    child.stdout.on("data", (chunk: Buffer) => {
      if (!ready && chunk.toString().includes(READY_LINE)) {
        ready = true
        if (!early) {
          clearTimeout(startTimer)
          setTimeout(kill, delayMs)
        }
      }
    })
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("exit", (code, signal) => {
      clearTimeout(startTimer)
      if (signal === "SIGKILL" && (ready || early)) resume(Effect.succeed({ ready }))
      else resume(Effect.fail(new Error(`worker ended with code ${code}, signal ${signal}: ${stderr}`)))
    })
    return Effect.sync(kill)
  })

/** Whole batches only, the total holds, no balance below zero, the chain intact. */
const checkBank = (filename: string) =>
  Effect.gen(function* () {
    const store = yield* SqliteEventStore.make({ filename })
    const history = yield* store.readStream(BANK_STREAM)
    if (history.length === 0) return 0 // killed before the opening batch committed
    expect(history.slice(0, ACCOUNTS).map((e) => e.type)).toEqual(Array(ACCOUNTS).fill("Opened"))
    const transfers = history.slice(ACCOUNTS)
    expect(transfers.length % 2).toBe(0)
    const balances = Array.from({ length: ACCOUNTS }, () => OPENING_BALANCE)
    for (let k = 0; k < transfers.length; k += 2) {
      const debit = transfers[k]!
      const credit = transfers[k + 1]!
      const d = debit.data as Movement
      const c = credit.data as Movement
      expect([debit.type, credit.type]).toEqual(["Debited", "Credited"])
      expect(c.transfer).toBe(d.transfer)
      expect(c.amount).toBe(d.amount)
      balances[d.account]! -= d.amount
      balances[c.account]! += c.amount
      if (balances[d.account]! < 0) expect.fail(`account ${d.account} went below zero at ${d.transfer}`)
    }
    expect(balances.reduce((a, b) => a + b, 0)).toBe(ACCOUNTS * OPENING_BALANCE)
    expect(findChainBreak(Chunk.toReadonlyArray(yield* Stream.runCollect(readRawRows(filename))))).toBeUndefined()
    return transfers.length / 2
  }).pipe(Effect.scoped)

describe("SqliteEventStore crash atomicity", () => {
  it.scopedLive(
    `a bank workload killed with SIGKILL ${KILLS} times keeps whole batches and its total`,
    () =>
      Effect.gen(function* () {
        const filename = join(yield* tempDir("crash"), "bank.db")
        const transfersAfter: Array<number> = []
        for (let run = 0; run < KILLS; run++) {
          const early = run === 0
          const delay = early
            ? yield* Random.nextIntBetween(0, EARLY_KILL_DELAY_MS_MAX)
            : yield* Random.nextIntBetween(KILL_DELAY_MS_MIN, KILL_DELAY_MS_MAX)
          yield* runAndKill(filename, SEED + run, delay, early)
          transfersAfter.push(yield* checkBank(filename))
        }
        // Every run after the first got to transfer; none lost what an earlier run committed.
        for (let run = 1; run < KILLS; run++) expect(transfersAfter[run]!).toBeGreaterThan(transfersAfter[run - 1]!)
      }).pipe(Effect.withRandom(Random.make(SEED))),
    CRASH_TEST_TIMEOUT_MS
  )
})
