/**
 * Child process for the SQLite crash test (RELIABILITY item 3, Jepsen's bank
 * test): transfers money between 8 accounts forever, each transfer one
 * 2-event batch (debit, credit) on the "bank" stream, until it is killed.
 * Usage: node --import tsx bankWorker.ts <db file> <seed>
 */
import { Effect, Random } from "effect"
import { SqliteEventStore } from "../../infra/eventstore/SqliteEventStore.js"

export const BANK_STREAM = "bank"
export const ACCOUNTS = 8
export const OPENING_BALANCE = 1_000
/** Printed once the worker has opened the store and starts transferring. */
export const READY_LINE = "ready"

interface Movement {
  readonly transfer: string
  readonly account: number
  readonly amount: number
}

const openingBatch = Array.from({ length: ACCOUNTS }, (_, account) => ({
  id: `open-${account}`,
  type: "Opened",
  data: { account, amount: OPENING_BALANCE }
}))

const run = (filename: string, seed: number) =>
  Effect.gen(function* () {
    const store = yield* SqliteEventStore.make({ filename })
    // A restart repeats the opening batch: an idempotent retry.
    yield* store.append(BANK_STREAM, openingBatch, "no_stream")
    const balances = Array.from({ length: ACCOUNTS }, () => 0)
    const history = yield* store.readStream(BANK_STREAM)
    for (const e of history) {
      const { account, amount } = e.data as Movement
      balances[account]! += e.type === "Debited" ? -amount : amount
    }
    let revision = history.length - 1
    process.stdout.write(`${READY_LINE}\n`)
    for (let n = 0; ; n++) {
      const from = yield* Random.nextIntBetween(0, ACCOUNTS)
      const to = (from + (yield* Random.nextIntBetween(1, ACCOUNTS))) % ACCOUNTS
      if (balances[from]! === 0) continue
      const amount = yield* Random.nextIntBetween(1, balances[from]! + 1)
      const transfer = `t-${seed}-${n}`
      const result = yield* store.append(
        BANK_STREAM,
        [
          { id: `${transfer}-debit`, type: "Debited", data: { transfer, account: from, amount } },
          { id: `${transfer}-credit`, type: "Credited", data: { transfer, account: to, amount } }
        ],
        revision
      )
      revision = result.nextRevision
      balances[from]! -= amount
      balances[to]! += amount
    }
  }).pipe(Effect.scoped, Effect.withRandom(Random.make(seed)))

const [filename, seed] = process.argv.slice(2)
if (filename !== undefined && seed !== undefined) {
  Effect.runPromise(run(filename, Number(seed))).catch((error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  })
}
