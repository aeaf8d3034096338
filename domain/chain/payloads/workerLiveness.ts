/**
 * The AI committee's word on workers (issue 12 item 4), two AI-shard kinds:
 *
 *   worker.liveness  [worker, online]      a member's gateway sees `worker`
 *                                          connected (1) or lost (0)
 *   worker.measure   [worker, unitsMilli]  a member's seeded benchmark of
 *                                          `worker` measured these GPU units
 *
 * Only members send them; the ledger (`domain/ai/ledger/workerLiveness.ts`)
 * takes the stake-weighted verdict. Import these through `transaction.ts`
 * (the kinds' union lives there): the codecs use its RLP field helpers, only
 * inside functions, so the two modules may load in either order.
 */
import { Either, Schema } from "effect"
import { Address, addressBytes } from "../keys.js"
import { addressField, list, positive, smallInt, type PayloadCodec } from "../transaction.js"

/** A member's view of a worker: connected and heartbeating, or not. */
export const WorkerLivenessPayload = Schema.Struct({
  kind: Schema.Literal("worker.liveness"),
  worker: Address,
  online: Schema.Boolean
})
export type WorkerLivenessPayload = typeof WorkerLivenessPayload.Type

/** Units are milli GPU units (`gpuClass.ts`); 2^64 is far above any class's devices × coefficient. */
export const MEASURED_UNITS_MILLI_LIMIT = 1n << 64n

/** A member's measurement of a worker's GPU units (the ledger caps it by the worker's declared class). */
export const WorkerMeasurePayload = Schema.Struct({
  kind: Schema.Literal("worker.measure"),
  worker: Address,
  unitsMilli: Schema.BigInt.pipe(Schema.positiveBigInt(), Schema.lessThanBigInt(MEASURED_UNITS_MILLI_LIMIT))
})
export type WorkerMeasurePayload = typeof WorkerMeasurePayload.Type

export const workerLivenessCodec: PayloadCodec<WorkerLivenessPayload> = {
  encode: (p) => [addressBytes(p.worker), p.online ? 1n : 0n],
  decode: (item) =>
    Either.gen(function* () {
      const [worker, online] = yield* list(item, 2, "worker.liveness")
      return {
        kind: "worker.liveness" as const,
        worker: yield* addressField(worker!, "worker.liveness.worker"),
        online: (yield* smallInt(online!, 1, "worker.liveness.online")) === 1
      }
    })
}

export const workerMeasureCodec: PayloadCodec<WorkerMeasurePayload> = {
  encode: (p) => [addressBytes(p.worker), p.unitsMilli],
  decode: (item) =>
    Either.gen(function* () {
      const [worker, units] = yield* list(item, 2, "worker.measure")
      const unitsMilli = yield* positive(units!, "worker.measure.unitsMilli")
      if (unitsMilli >= MEASURED_UNITS_MILLI_LIMIT) return yield* Either.left(`worker.measure.unitsMilli must be below 2^64`)
      return { kind: "worker.measure" as const, worker: yield* addressField(worker!, "worker.measure.worker"), unitsMilli }
    })
}
