/**
 * The worker registry and bonds.
 *
 *   worker.register  signed by the worker's own key (sender = worker = owner
 *                    of the registration); units = devices × its class's
 *                    coefficient (genesis table). Re-registering updates it.
 *   bond receipt     an owner's stake for a worker, already in STAKE_POOL
 *                    (a bond may come before the worker registers)
 *   worker.unbond    of the sender's own bond only, at most what it holds;
 *                    the economy releases it after the unbonding epochs.
 * Registration does not check `minWorkerStake` (the stake may come later);
 * settlement does (`settle.ts`).
 */
import { Either, HashSet } from "effect"
import type { Address } from "../../chain/keys.js"
import type { Transaction, WorkerRegisterPayload, WorkerUnbondPayload } from "../../chain/transaction.js"
import { SYSTEM_STAKE_POOL } from "../../economics/accounts.js"
import { bondOf } from "../../economics/bonds.js"
import { coefficientOf, gpuUnitsMilli } from "../worker/gpuClass.js"
import type { AiContext } from "./context.js"
import { AiStakeBonded, AiUnbondRequested, AiWorkerRegistered, reject, type AiEvent, type AiRejection } from "./events.js"
import type { AiReceipt } from "./receiptPurpose.js"
import type { AiLedgerState } from "./state.js"

type Decision = Either.Either<ReadonlyArray<AiEvent>, AiRejection>

export const decideWorkerRegister = (ctx: AiContext, tx: Transaction, p: WorkerRegisterPayload): Decision => {
  const coefficient = coefficientOf(ctx.gpuClasses, p.gpuClass)
  if (coefficient === undefined) {
    return Either.left(reject("UnknownGpuClass", `GPU class ${JSON.stringify(p.gpuClass)} is not one of ${Object.keys(ctx.gpuClasses).join(", ")}`))
  }
  return Either.right([
    new AiWorkerRegistered({
      worker: tx.sender,
      owner: tx.sender,
      publicKey: tx.publicKey.hex,
      gpuClass: p.gpuClass,
      devices: p.devices,
      gpuUnitsMilli: gpuUnitsMilli(coefficient, p.devices),
      endpoint: p.endpoint,
      registeredHeight: ctx.height,
      at: ctx.timestamp
    })
  ])
}

export const decideBondReceipt = (s: AiLedgerState, r: AiReceipt, worker: Address): Decision => {
  if (r.to !== SYSTEM_STAKE_POOL) return Either.left(reject("ReceiptMismatch", `a bond receipt pays ${SYSTEM_STAKE_POOL}, this one ${r.to}`))
  if (r.amount <= 0n) return Either.left(reject("ReceiptMismatch", `bond receipt ${r.receiptId} of ${r.amount}`))
  if (HashSet.has(s.credited, r.receiptId)) return Either.left(reject("ReceiptAlreadyCredited", `receipt ${r.receiptId} was credited`))
  return Either.right([new AiStakeBonded({ receiptId: r.receiptId, worker, owner: r.from, amount: r.amount })])
}

export const decideUnbond = (s: AiLedgerState, tx: Transaction, p: WorkerUnbondPayload): Decision => {
  const own = bondOf(s.economy, p.worker, tx.sender)
  if (own === 0n) {
    return Either.left(reject("NotStakeOwner", `${tx.sender} has no stake bonded to worker ${p.worker}; an account unbonds only its own bond`))
  }
  if (p.amount > own) {
    return Either.left(reject("UnbondOverBond", `${tx.sender} has ${own} bonded to worker ${p.worker}; cannot unbond ${p.amount}`))
  }
  return Either.right([new AiUnbondRequested({ txHash: tx.hash, worker: p.worker, owner: tx.sender, amount: p.amount })])
}
