/** One decoder per stream kind: the kinds of the actors' streams, typed events back from stored data, typed refusals of bad data. */
import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { escrowStream } from "../../actors/EscrowActor.js"
import { workerStream } from "../../actors/GpuWorkerActor.js"
import { modelStream } from "../../actors/ModelActor.js"
import { shardStream } from "../../actors/ShardActor.js"
import { taskStream } from "../../actors/TaskActor.js"
import { consensusStream } from "../../actors/BftSeat.js"
import { snapshotStream } from "../../actors/kernel/Snapshot.js"
import { EscrowDeposited } from "../../domain/ai/escrow/events.js"
import { AiEvent, EscrowCredited } from "../../domain/ai/ledger/events.js"
import { TaskFailed } from "../../domain/ai/task/events.js"
import { FeeCharged, ShardEvent } from "../../domain/chain/events.js"
import type { Address } from "../../domain/chain/keys.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { rewardEpochStreamId } from "../../domain/economics/events.js"
import { decodeEventOf, decodeStored, isAiEvent, streamKindOf } from "../../domain/streamEvents.js"

const DEV = `0x${"ab".repeat(20)}` as Address
const HASH = `0x${"cd".repeat(32)}` as Hash32

/** An event as an actor stores it: its type, and its encoding without `_tag` as JSON. */
const stored = <A extends { readonly _tag: string }, I>(schema: Schema.Schema<A, I>, event: A) => {
  const { _tag, ...data } = Schema.encodeSync(schema)(event) as { readonly _tag: string }
  return { type: _tag, data: JSON.parse(JSON.stringify(data)) as unknown }
}

describe("streamKindOf", () => {
  it("names the kind of every stream an actor writes, and none for snapshots and consensus records", () => {
    expect(streamKindOf(shardStream(0))).toBe("shard")
    expect(streamKindOf(shardStream(3))).toBe("shard")
    expect(streamKindOf(modelStream(HASH))).toBe("model")
    expect(streamKindOf(taskStream(HASH))).toBe("task")
    expect(streamKindOf(workerStream(DEV))).toBe("worker")
    expect(streamKindOf(escrowStream(DEV, HASH))).toBe("escrow")
    expect(streamKindOf(rewardEpochStreamId(7))).toBe("reward")
    expect(streamKindOf(snapshotStream(taskStream(HASH)))).toBeUndefined()
    expect(streamKindOf(consensusStream(1, 0))).toBeUndefined()
    expect(streamKindOf("shard-x")).toBeUndefined()
  })
})

describe("decodeEventOf / decodeStored", () => {
  it("gives back the typed event an actor stored, with its stream's kind", () => {
    const fee = new FeeCharged({ txHash: HASH, payer: DEV, fee: 10n, nonce: 3n })
    const s = stored(ShardEvent, fee)
    const decoded = decodeStored({ stream: shardStream(1), ...s })
    expect(decoded).toEqual(Either.right({ kind: "shard", event: fee }))
    const failed = new TaskFailed({ cause: "TimedOut", detail: "no worker", at: 5 })
    const f = stored(Schema.Union(TaskFailed), failed)
    expect(decodeEventOf("task", f.type, f.data)).toEqual(Either.right(failed))
    const deposit = new EscrowDeposited({ developer: DEV, modelId: HASH, amount: 5n, txHash: HASH, at: 1 })
    const d = stored(Schema.Union(EscrowDeposited), deposit)
    const back = decodeStored({ stream: escrowStream(DEV, HASH), ...d })
    expect(back !== undefined && Either.isRight(back) && back.right.kind === "escrow" && back.right.event._tag === "EscrowDeposited" && back.right.event.amount).toBe(5n)
  })

  it("decodes the AI ledger's events on a shard stream, and tells them from the chain's", () => {
    const credit = new EscrowCredited({ receiptId: HASH, developer: DEV, model: HASH, amount: 9n })
    const s = stored(AiEvent, credit)
    const e = Either.getOrThrow(decodeEventOf("shard", s.type, s.data))
    expect(e).toEqual(credit)
    expect(isAiEvent(e)).toBe(true)
    expect(isAiEvent(new FeeCharged({ txHash: HASH, payer: DEV, fee: 1n, nonce: 0n }))).toBe(false)
  })

  it("refuses what is not its kind's event with a reason, never a throw", () => {
    const fee = stored(ShardEvent, new FeeCharged({ txHash: HASH, payer: DEV, fee: 10n, nonce: 3n }))
    const notObject = [null, [1, 2], "text", 42]
    for (const data of notObject) {
      const r = decodeEventOf("shard", "FeeCharged", data)
      expect(Either.isLeft(r) && r.left).toMatch(/not a JSON object/)
    }
    // A type of another kind: a task stream holds no FeeCharged.
    expect(Either.isLeft(decodeEventOf("task", fee.type, fee.data))).toBe(true)
    // A type no schema has.
    const unknown = decodeEventOf("shard", "Minted", fee.data)
    expect(Either.isLeft(unknown) && unknown.left).toMatch(/^Minted: /)
    // A field of the wrong form.
    const bad = decodeEventOf("shard", fee.type, { ...(fee.data as object), fee: "ten" })
    expect(Either.isLeft(bad) && bad.left).toMatch(/fee/)
    expect(decodeStored({ stream: "snapshot-task-1", type: "Snapshot", data: {} })).toBeUndefined()
    // The chain events nothing emits any more are no shard event (bonds, models and governance are the AI ledger's).
    for (const dead of ["StakeBonded", "UnbondRequested", "ModelRegistered", "ModelPriceRequested", "ModelDeprecationRequested", "ShardSharesProposed"]) {
      expect(ShardEvent.members.some((m) => m._tag === dead)).toBe(false)
      expect(Either.isLeft(decodeEventOf("shard", dead, { txHash: HASH, owner: DEV, worker: DEV, amount: "5" }))).toBe(true)
    }
  })
})
