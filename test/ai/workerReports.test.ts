/** What a committee member's gateway reports and measures, from the ledger's view and what its hub sees (pure rules). */
import { describe, expect, it } from "vitest"
import type { Address } from "../../domain/chain/keys.js"
import { livenessReports } from "../../domain/ai/worker/livenessReports.js"
import { benchmarksDue } from "../../domain/ai/worker/benchmarkSchedule.js"
import { accept, ctxAt, initial, key, signed, txIn, validators, withWorkers, worker1, worker2 } from "./ledger/support.js"

const W1 = worker1.publicKey.address
const W2 = worker2.publicKey.address
const A = validators[0]
const me = A.publicKey.address
const stranger = key("unregistered-worker").publicKey.address
const sees = (...ws: ReadonlyArray<Address>): ReadonlySet<Address> => new Set(ws)

describe("livenessReports", () => {
  const registered = withWorkers(initial())

  it("reports online the registered workers it sees that the ledger does not hold as seen by it; never an unregistered one", () => {
    expect(livenessReports(registered, me, sees(W1, stranger), false)).toEqual([{ worker: W1, online: true }])
  })

  it("nothing when the ledger holds its views; offline for a worker it no longer sees; nothing for one it never reported", () => {
    const s = accept(registered, ctxAt(3), txIn(signed(A, { kind: "worker.liveness", worker: W1, online: true })))
    expect(livenessReports(s, me, sees(W1), false)).toEqual([])
    expect(livenessReports(s, me, sees(), false)).toEqual([{ worker: W1, online: false }])
    expect(livenessReports(s, me, sees(W1, W2), false)).toEqual([{ worker: W2, online: true }])
  })

  it("at a new epoch, every worker it sees again (views held or not); an offline view held is not repeated", () => {
    const s = accept(
      registered,
      ctxAt(3),
      txIn(signed(A, { kind: "worker.liveness", worker: W1, online: true })),
      txIn(signed(A, { kind: "worker.liveness", worker: W2, online: false }))
    )
    expect(livenessReports(s, me, sees(W1), true)).toEqual([{ worker: W1, online: true }])
  })
})

describe("benchmarksDue", () => {
  const registered = withWorkers(initial())

  it("a registered worker it sees and never measured: now, unless a retry is scheduled later; never an unregistered one", () => {
    expect(benchmarksDue(registered, me, sees(W2, W1, stranger), new Map(), 1_000)).toEqual([W1, W2].sort())
    expect(benchmarksDue(registered, me, sees(W1), new Map([[W1, 2_000]]), 1_000)).toEqual([])
    expect(benchmarksDue(registered, me, sees(W1), new Map([[W1, 1_000]]), 1_000)).toEqual([W1])
  })

  it("a worker it measured: only at its scheduled time, and only while it sees it", () => {
    const s = accept(registered, ctxAt(3), txIn(signed(A, { kind: "worker.measure", worker: W1, unitsMilli: 500n })))
    expect(benchmarksDue(s, me, sees(W1), new Map(), 1_000)).toEqual([])
    expect(benchmarksDue(s, me, sees(W1), new Map([[W1, 999]]), 1_000)).toEqual([W1])
    expect(benchmarksDue(s, me, sees(), new Map([[W1, 999]]), 1_000)).toEqual([])
  })
})
