import { describe, expect, it } from "@effect/vitest"
import { Either, HashMap, HashSet } from "effect"
import fc from "fast-check"
import type { CommitteeSeat } from "../../../domain/ai/ledger/context.js"
import type { AiEvent } from "../../../domain/ai/ledger/events.js"
import type { AiLedgerState } from "../../../domain/ai/ledger/state.js"
import { medianByStake } from "../../../domain/ai/ledger/workerLiveness.js"
import { decodeTransaction, type Transaction } from "../../../domain/chain/transaction.js"
import { encodeRlp } from "../../../domain/chain/rlp.js"
import type { Address } from "../../../domain/chain/keys.js"
import type { AiContext } from "../../../domain/ai/ledger/context.js"
import {
  accept,
  ctxAt,
  epochReceipt,
  initial,
  key,
  signed,
  step,
  tagsOf,
  txIn,
  validators,
  withVerifiedModel,
  withWorkers,
  worker1,
  worker2,
  T0
} from "./support.js"

const W1 = worker1.publicKey.address
const W2 = worker2.publicKey.address
const [A, B, C] = validators
const view = (member: typeof A, worker: Address, online: boolean) => txIn(signed(member, { kind: "worker.liveness", worker, online }))
const measure = (member: typeof A, worker: Address, unitsMilli: bigint) => txIn(signed(member, { kind: "worker.measure", worker, unitsMilli }))
const at = (height: number, timestamp: number, over: Partial<AiContext> = {}) => ctxAt(height, { timestamp, ...over })

describe("worker.liveness: online iff members holding > 1/2 of the committee's stake view it online", () => {
  it("a's view (50 of 100: exactly half) is not enough; with b's (80) the worker is online at that block's time; b offline again (50) flips it offline", () => {
    let s = withWorkers(initial())
    let r = step(s, at(3, T0 + 3_000), view(A, W1, true))
    expect(tagsOf(r.events)).toEqual(["AiWorkerLivenessViewed"])
    r = step(r.state, at(4, T0 + 4_000), view(B, W1, true))
    expect(r.events[1]).toMatchObject({ _tag: "AiWorkerOnline", worker: W1, at: T0 + 4_000 })
    expect(HashSet.has(r.state.online, W1)).toBe(true)
    // c's view changes nothing (already online); repeated views are accepted and change nothing
    r = step(r.state, at(5, T0 + 5_000), view(C, W1, false))
    expect(tagsOf(r.events)).toEqual(["AiWorkerLivenessViewed"])
    r = step(r.state, at(6, T0 + 6_000), view(B, W1, false))
    expect(r.events[1]).toMatchObject({ _tag: "AiWorkerOffline", worker: W1, at: T0 + 6_000 })
    s = r.state
    expect(HashSet.has(s.online, W1)).toBe(false)
    expect(HashSet.has(s.online, W2)).toBe(false)
  })

  it("only members send it (NotCommitteeMember), and only of a registered worker (UnknownWorker); a refusal changes nothing", () => {
    const s = withWorkers(initial())
    expect(step(s, ctxAt(3), view(key("outsider"), W1, true)).rejection?.reason).toBe("NotCommitteeMember")
    expect(step(s, ctxAt(3), measure(key("outsider"), W1, 1_000n)).rejection?.reason).toBe("NotCommitteeMember")
    const stranger = key("not-registered").publicKey.address
    expect(step(s, ctxAt(3), view(A, stranger, true)).rejection?.reason).toBe("UnknownWorker")
    expect(step(s, ctxAt(3), measure(A, stranger, 1_000n)).rejection?.reason).toBe("UnknownWorker")
  })

  it("the committee changes: a former member's views stop counting and are dropped at the block's end, and the worker flips offline", () => {
    const s = accept(withWorkers(initial()), ctxAt(3), view(A, W1, true), view(B, W1, true))
    expect(HashSet.has(s.online, W1)).toBe(true)
    // b leaves; a new member d holds 30: online stake 50 of 100 is not more than half
    const d = { address: key("validator-d").publicKey.address, stake: 30n }
    const next = [{ address: A.publicKey.address, stake: 50n }, { address: C.publicKey.address, stake: 20n }, d]
    const r = step(s, at(4, T0 + 4_000, { committee: next }), { _tag: "BlockEnd" })
    expect(tagsOf(r.events)).toEqual(["AiLivenessViewsDropped", "AiWorkerOffline"])
    expect(r.events[0]).toMatchObject({ members: [B.publicKey.address] })
    expect(HashMap.has(HashMap.unsafeGet(r.state.liveness, W1), B.publicKey.address)).toBe(false)
    // the next block's end has nothing left to do
    expect(step(r.state, at(5, T0 + 5_000, { committee: next }), { _tag: "BlockEnd" }).events).toEqual([])
  })
})

describe("worker.measure: units = the stake-weighted median once > 1/2 of the stake measured, capped by the class", () => {
  it("a alone (50) sets nothing; a and b (80): the lower median of 700 (50) and 1_500 (30) is 700; a measures 5_000: capped at the class's 2_000", () => {
    let r = step(withWorkers(initial()), ctxAt(3), measure(A, W1, 700n))
    expect(tagsOf(r.events)).toEqual(["AiWorkerMeasured"])
    r = step(r.state, ctxAt(4), measure(B, W1, 1_500n))
    expect(r.events[1]).toMatchObject({ _tag: "AiWorkerUnitsMeasured", worker: W1, gpuUnitsMilli: 700n })
    expect(HashMap.unsafeGet(r.state.workers, W1).gpuUnitsMilli).toBe(700n)
    r = step(r.state, ctxAt(5), measure(A, W1, 5_000n))
    expect(r.events[1]).toMatchObject({ _tag: "AiWorkerUnitsMeasured", gpuUnitsMilli: 2_000n })
    expect(r.state.economy.workers.pipe(HashMap.unsafeGet(W1)).gpuUnitsMilli).toBe(2_000n)
    // re-registering declares a class again: the class's units, the measurements gone
    const again = step(r.state, ctxAt(6), txIn(signed(worker1, { kind: "worker.register", gpuClass: "GPU", devices: 1, endpoint: "ws://w1" })))
    expect(HashMap.unsafeGet(again.state.workers, W1)).toMatchObject({ gpuUnitsMilli: 1_000n, classUnitsMilli: 1_000n })
    expect(HashMap.has(again.state.measures, W1)).toBe(false)
  })
})

describe("online mining from the committee's liveness", () => {
  it("worker 1 online for half the epoch and worker 2 for all of it (same units) share the online pool 1 : 2 (16_000: 5_333 and 10_666)", () => {
    const { state } = withVerifiedModel()
    let s = withWorkers(state)
    s = accept(s, at(3, T0), view(A, W2, true), view(B, W2, true))
    s = accept(s, at(4, T0 + 25_000), view(A, W1, true), view(B, W1, true))
    s = accept(s, at(5, T0 + 75_000), view(A, W1, false))
    const r = step(s, at(6, T0 + 100_000), epochReceipt(0, T0, T0 + 100_000))
    expect(r.rejection).toBeNull()
    const online = r.events.filter((e) => e._tag === "RewardCredited" && e.kind === "OnlineMining")
    expect(online.map((e) => [e._tag === "RewardCredited" && e.to, e._tag === "RewardCredited" && e.amount])).toEqual(
      [
        [W1, 5_333n],
        [W2, 10_666n]
      ].sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1))
    )
    expect(r.events.find((e) => e._tag === "EpochClosed")).toMatchObject({ onlineMiningPaid: 15_999n })
  })

  it("a registered worker no member reported is offline and earns no online mining", () => {
    const { state } = withVerifiedModel()
    const r = step(withWorkers(state), at(6, T0 + 100_000), epochReceipt(0, T0, T0 + 100_000))
    expect(r.events.find((e) => e._tag === "EpochClosed")).toMatchObject({ onlineMiningPaid: 0n })
  })
})

describe("the kinds' codecs", () => {
  it("round-trip through the signed RLP; an `online` other than 0 or 1 and zero units are malformed", () => {
    for (const tx of [view(A, W1, true), view(A, W1, false), measure(A, W1, 1_234n)]) {
      const t = (tx as { tx: Transaction }).tx
      const back = decodeTransaction(t.encoded)
      expect(Either.isRight(back) && back.right.body.payload).toEqual(t.body.payload)
    }
    const bad = (payload: ReadonlyArray<Uint8Array | bigint>, kind: string) => {
      const t = (view(A, W1, true) as { tx: Transaction }).tx
      const fields = [t.body.chainId, t.body.nonce, t.body.fee, new TextEncoder().encode(kind), payload, t.publicKey.bytes, t.signature]
      return decodeTransaction(encodeRlp(fields))
    }
    const w = Uint8Array.from(Buffer.from(W1.slice(2), "hex"))
    expect(Either.isLeft(bad([w, 2n], "worker.liveness"))).toBe(true)
    expect(Either.isLeft(bad([w, 0n], "worker.measure"))).toBe(true)
    expect(Either.isLeft(bad([w], "worker.liveness"))).toBe(true)
  })
})

// ---------------------------------------------------------------- properties

const MEMBERS = [0, 1, 2, 3, 4].map((i) => key(`liveness-member-${i}`))
/** One signed view per (member, online): the ledger does not look at nonces, so they are reused. */
const VIEWS = MEMBERS.map((m) => [false, true].map((online) => view(m, W1, online)))
const committeeOf = (stakes: ReadonlyArray<number>): ReadonlyArray<CommitteeSeat> =>
  stakes.map((stake, i) => ({ address: MEMBERS[i]!.publicKey.address, stake: BigInt(stake) }))

const stakesArb = fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 5 })
const registered = (): AiLedgerState => withWorkers(initial())

const run = (committee: ReadonlyArray<CommitteeSeat>, reports: ReadonlyArray<{ m: number; online: boolean }>) => {
  let s = registered()
  const events: Array<AiEvent> = []
  reports.forEach((r, i) => {
    const out = step(s, ctxAt(3 + i, { committee }), VIEWS[r.m]![r.online ? 1 : 0]!)
    if (out.rejection !== null) throw new Error(out.rejection.detail)
    events.push(...out.events)
    s = out.state
  })
  return { s, events }
}

describe("liveness properties", () => {
  it("after any reports, the worker is online iff the members whose latest view is online hold > 1/2 of the stake; flips alternate", () => {
    fc.assert(
      fc.property(
        stakesArb.chain((stakes) =>
          fc.tuple(fc.constant(stakes), fc.array(fc.record({ m: fc.integer({ min: 0, max: stakes.length - 1 }), online: fc.boolean() }), { maxLength: 12 }))
        ),
        ([stakes, reports]) => {
          const committee = committeeOf(stakes)
          const { s, events } = run(committee, reports)
          const latest = new Map<number, boolean>()
          for (const r of reports) latest.set(r.m, r.online)
          const onlineStake = stakes.reduce((sum, x, i) => (latest.get(i) === true ? sum + x : sum), 0)
          const total = stakes.reduce((a, b) => a + b, 0)
          expect(HashSet.has(s.online, W1)).toBe(2 * onlineStake > total)
          const flips = tagsOf(events).filter((t) => t === "AiWorkerOnline" || t === "AiWorkerOffline")
          flips.forEach((t, i) => expect(t).toBe(i % 2 === 0 ? "AiWorkerOnline" : "AiWorkerOffline"))
        }
      ),
      { numRuns: 150 }
    )
  })

  it("a lone lying member holding < 1/2 of the stake cannot flip a worker the others all see the same way", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 5 }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (stakes, liarAt, truth, lies) => {
          const liar = liarAt % stakes.length
          const total = stakes.reduce((a, b) => a + b, 0)
          fc.pre(2 * stakes[liar]! < total)
          const honest = stakes.map((_, i) => i).filter((i) => i !== liar)
          const { s, events } = run(committeeOf(stakes), [...honest.map((m) => ({ m, online: truth })), ...lies.map((online) => ({ m: liar, online }))])
          expect(HashSet.has(s.online, W1)).toBe(truth)
          // once the honest members have spoken, the liar's reports flip nothing
          expect(events.length).toBe(honest.length + (truth ? 1 : 0) + lies.length)
          expect(events.slice(events.length - lies.length).every((e) => e._tag === "AiWorkerLivenessViewed")).toBe(true)
        }
      ),
      { numRuns: 150 }
    )
  })

  it("deterministic: the same reports give the same events and the same state", () => {
    fc.assert(
      fc.property(stakesArb, fc.array(fc.record({ m: fc.integer({ min: 0, max: 4 }), online: fc.boolean() }), { maxLength: 10 }), (stakes, raw) => {
        const reports = raw.map((r) => ({ ...r, m: r.m % stakes.length }))
        const a = run(committeeOf(stakes), reports)
        const b = run(committeeOf(stakes), reports)
        expect(b.events).toEqual(a.events)
        expect([...b.s.online]).toEqual([...a.s.online])
        expect(b.s.economy.workers.pipe(HashMap.unsafeGet(W1))).toEqual(a.s.economy.workers.pipe(HashMap.unsafeGet(W1)))
      }),
      { numRuns: 60 }
    )
  })
})

describe("median properties", () => {
  const measuresArb = stakesArb.chain((stakes) =>
    fc.tuple(fc.constant(stakes), fc.array(fc.option(fc.bigInt({ min: 1n, max: 10_000n }), { nil: undefined }), { minLength: stakes.length, maxLength: stakes.length }))
  )
  const measuresOf = (committee: ReadonlyArray<CommitteeSeat>, values: ReadonlyArray<bigint | undefined>) =>
    committee.reduce((m, seat, i) => (values[i] === undefined ? m : HashMap.set(m, seat.address, values[i]!)), HashMap.empty<Address, bigint>())

  it("set iff > 1/2 of the stake measured; then one of the measured values, with at least half the measured stake at or below it and at or above it", () => {
    fc.assert(
      fc.property(measuresArb, ([stakes, values]) => {
        const committee = committeeOf(stakes)
        const median = medianByStake(committee, measuresOf(committee, values))
        const total = stakes.reduce((a, b) => a + b, 0)
        const measured = stakes.reduce((sum, x, i) => (values[i] === undefined ? sum : sum + x), 0)
        if (2 * measured <= total) {
          expect(median).toBeNull()
          return
        }
        expect(values).toContain(median)
        const below = stakes.reduce((sum, x, i) => (values[i] !== undefined && values[i]! <= median! ? sum + x : sum), 0)
        const above = stakes.reduce((sum, x, i) => (values[i] !== undefined && values[i]! >= median! ? sum + x : sum), 0)
        expect(2 * below).toBeGreaterThanOrEqual(measured)
        expect(2 * above).toBeGreaterThanOrEqual(measured)
      }),
      { numRuns: 200 }
    )
  })

  it("through the ledger: the worker's units never exceed its class's (2_000), whatever the members measure", () => {
    fc.assert(
      fc.property(
        stakesArb,
        fc.array(fc.record({ m: fc.integer({ min: 0, max: 4 }), units: fc.bigInt({ min: 1n, max: 1_000_000n }) }), { minLength: 1, maxLength: 8 }),
        (stakes, raw) => {
          const committee = committeeOf(stakes)
          let s = registered()
          raw.forEach((r, i) => {
            const out = step(s, ctxAt(3 + i, { committee }), txIn(signed(MEMBERS[r.m % stakes.length]!, { kind: "worker.measure", worker: W1, unitsMilli: r.units })))
            expect(out.rejection).toBeNull()
            s = out.state
          })
          const units = HashMap.unsafeGet(s.workers, W1).gpuUnitsMilli
          expect(units <= 2_000n).toBe(true)
          expect(HashMap.unsafeGet(s.economy.workers, W1).gpuUnitsMilli).toBe(units)
        }
      ),
      { numRuns: 60 }
    )
  })
})
