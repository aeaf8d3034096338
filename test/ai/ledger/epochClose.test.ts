import { describe, expect, it } from "@effect/vitest"
import { epochCloseCause } from "../../../domain/ai/ledger/epochClose.js"
import type { AiPayout } from "../../../domain/ai/ledger/events.js"
import {
  accept,
  bondReceipt,
  ctxAt,
  developer,
  epochReceipt,
  escrowReceipt,
  hashOf,
  owner,
  provider,
  settleTx,
  signed,
  step,
  tagsOf,
  txIn,
  usageReceipt,
  withVerifiedModel,
  withWorkers,
  worker1,
  T0
} from "./support.js"

const payouts = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is AiPayout => e._tag === "AiPayout").map((p) => [p.source, p.to, p.amount, p.index] as const)

describe("epoch close on the beacon's epoch receipt", () => {
  it("closes epoch 0: launch 10_000, task mining 16_800 (worker, 70 %) + 7_200 (provider), subsidy 10 — as reward events and payouts", () => {
    // Issuance 100_000 an epoch (40 % a year of 1_000_000, four epochs a year); AI pool 50 % = 50_000;
    // after the launch reward 40_000: online 40 % = 16_000 (nobody is online: no member reported the worker online, see workerLiveness.test.ts), tasks 24_000.
    const { state, model } = withVerifiedModel()
    const s = accept(withWorkers(state), ctxAt(3), escrowReceipt(developer, model, 1_000n), txIn(settleTx(usageReceipt(hashOf("task"), model))))
    const r = step(s, ctxAt(4), epochReceipt(0, T0, T0 + 100_000))
    expect(r.rejection).toBeNull()
    const header = r.events.find((e) => e._tag === "EpochClosed")
    expect(header).toMatchObject({ epoch: 0, issuance: 100_000n, aiPool: 50_000n, launchRewards: 10_000n, onlineMiningPaid: 0n, taskMiningPaid: 24_000n, foundationPaid: 10n })
    const p = provider.publicKey.address
    const w = worker1.publicKey.address
    expect(payouts(r.events)).toEqual([
      ["reserve", p, 10_000n, 0],
      ["reserve", w, 16_800n, 1],
      ["reserve", p, 7_200n, 2],
      ["foundation", w, 10n, 3]
    ])
    expect(r.events.filter((e): e is AiPayout => e._tag === "AiPayout").every((x) => x.cause === epochCloseCause(0))).toBe(true)
    // The reward events precede the payouts, and the header is the last reward event.
    const tags = tagsOf(r.events)
    expect(tags.indexOf("EpochClosed")).toBe(tags.findIndex((t) => t === "AiPayout") - 1)
    expect(r.state.economy.epoch).toBe(1)
    expect(r.state.economy.minted).toBe(34_000n)
  })

  it("an epoch receipt for a closed (or future) epoch is EpochOutOfOrder", () => {
    const { state } = withVerifiedModel()
    const closed = accept(state, ctxAt(4), epochReceipt(0, T0, T0 + 1))
    expect(step(closed, ctxAt(5), epochReceipt(0, T0, T0 + 1)).rejection?.reason).toBe("EpochOutOfOrder")
    expect(step(closed, ctxAt(5), epochReceipt(2, T0, T0 + 1)).rejection?.reason).toBe("EpochOutOfOrder")
  })

  it("an unbond is released to its owner from the stake pool at the close of epoch e + unbondingEpochs − 1 (epoch 1)", () => {
    const w = worker1.publicKey.address
    const { state } = withVerifiedModel()
    const s = accept(state, ctxAt(2), bondReceipt(owner, worker1, 500n), txIn(signed(owner, { kind: "worker.unbond", worker: w, amount: 200n })))
    const first = step(s, ctxAt(3), epochReceipt(0, T0, T0 + 1))
    expect(payouts(first.events).filter(([source]) => source === "stakePool")).toEqual([])
    const second = step(first.state, ctxAt(4), epochReceipt(1, T0 + 1, T0 + 2))
    expect(payouts(second.events)).toEqual([["stakePool", owner.publicKey.address, 200n, 0]])
    expect(tagsOf(second.events)).toContain("StakeReleased")
  })
})
