/**
 * `usage.overran`: tasks whose run overran the compute node's limits on two
 * workers (domain/ai/task/overrun.ts), charged like a validated task. A
 * receipt carries what the parties signed: the developer's grant and request
 * (as in `usage.settle`: the task id is the request's digest) and two
 * distinct workers' overrun claims, each signed over
 * `overrunDigest(taskId, kind, millis, limit)` (signedMessages.ts). The
 * ledger charges the price once per task id, `usage.settle` or this
 * (`domain/ai/ledger/settle.ts`), and pays each worker's `millis` as its
 * execMs. Only AI-shard members send it.
 *
 *   payload = [receipt, ...]
 *   receipt = [grant, taskId, model, price, [claim, claim], request]
 *   claim   = [worker, kind, millis, limit, signature]   (kind: UTF-8)
 *
 * transaction.ts imports this file and this file imports transaction.ts's
 * grant, request and field helpers: everything here is a function
 * declaration (hoisted) and nothing reads transaction.ts at load, so the
 * cycle is safe whichever module loads first.
 */
import { Either, Schema } from "effect"
import { Hash32, hashBytes } from "../hash.js"
import { bytesToHex, hexToBytes, utf8 } from "../hex.js"
import { Address, addressBytes, SIGNATURE_BYTES } from "../keys.js"
import type { RlpInput, RlpItem } from "../rlp.js"
import {
  addressField,
  boundedList,
  decodeGrant,
  decodeRequest,
  encodeGrant,
  encodeRequest,
  fixedBytes,
  hashField,
  list,
  MS_MAX,
  smallInt,
  uintField,
  USAGE_RECEIPTS_MAX,
  type OverrunClaim,
  type OverranReceipt,
  type UsageOverranPayload
} from "../transaction.js"

/** The limits a compute node's engine stops a run at (`OverrunKind` of domain/ai/model/overruns.ts). */
export function overrunKinds() {
  return ["Deadline", "LoadDeadline", "Memory"] as const
}

/** Two workers' claims confirm an overrun (task/overrun.ts): a receipt carries exactly two. */
export function overranClaimsPerReceipt(): number {
  return 2
}

/** The parts of transaction.ts the schema is made of (passed in: see above). */
interface Parts<G, Q, M, S, U> {
  readonly grant: G
  readonly request: Q
  readonly ms: M
  readonly signature: S
  readonly uint: U
}

/** The payload's schema, built by transaction.ts from its own parts. */
export function usageOverranSchemasOf<
  G extends Schema.Schema.Any,
  Q extends Schema.Schema.Any,
  M extends Schema.Schema.Any,
  S extends Schema.Schema.Any,
  U extends Schema.Schema.Any
>(parts: Parts<G, Q, M, S, U>) {
  const claim = Schema.Struct({
    worker: Address,
    kind: Schema.Literal(...overrunKinds()),
    /** How long the run went before the limit stopped it (whole ms): the worker's paid execMs. */
    millis: parts.ms,
    /** The limit it passed: ms for a deadline, bytes for memory. */
    limit: parts.ms,
    /** Over `overrunDigest(taskId, kind, millis, limit)`, by the worker's registered key. */
    signature: parts.signature
  })
  const receipt = Schema.Struct({
    grant: parts.grant,
    taskId: Hash32,
    model: Hash32,
    price: parts.uint,
    claims: Schema.Array(claim).pipe(Schema.minItems(overranClaimsPerReceipt()), Schema.maxItems(overranClaimsPerReceipt())),
    request: parts.request
  })
  const payload = Schema.Struct({
    kind: Schema.Literal("usage.overran"),
    receipts: Schema.Array(receipt).pipe(Schema.minItems(1), Schema.maxItems(USAGE_RECEIPTS_MAX))
  })
  return { claim, receipt, payload }
}

/** Each receipt makes execution verify four signatures (grant, request, two claims): 256 receipts fit the settle budget. */
export function overranReceiptSignatures(): number {
  return 2 + overranClaimsPerReceipt()
}

function encodeClaim(c: OverrunClaim): RlpInput {
  return [addressBytes(c.worker), utf8(c.kind), BigInt(c.millis), BigInt(c.limit), Either.getOrThrow(hexToBytes(c.signature))]
}

function decodeClaim(item: RlpItem, what: string): Either.Either<OverrunClaim, string> {
  return Either.gen(function* () {
    const [worker, kind, millis, limit, signature] = yield* list(item, 5, what)
    if (!(kind instanceof Uint8Array)) return yield* Either.left(`${what}.kind must be a string`)
    const known = overrunKinds().find((k) => bytesToHex(utf8(k)) === bytesToHex(kind))
    if (known === undefined) {
      return yield* Either.left(`${what}.kind must be one of ${overrunKinds().join(", ")}`)
    }
    return {
      worker: yield* addressField(worker!, `${what}.worker`),
      kind: known,
      millis: yield* smallInt(millis!, MS_MAX, `${what}.millis`),
      limit: yield* smallInt(limit!, MS_MAX, `${what}.limit`),
      signature: yield* fixedBytes(signature!, SIGNATURE_BYTES, `${what}.signature`)
    }
  })
}

function decodeReceipt(item: RlpItem, what: string): Either.Either<OverranReceipt, string> {
  return Either.gen(function* () {
    const [grant, taskId, model, price, claims, request] = yield* list(item, 6, what)
    const [first, second] = yield* list(claims!, overranClaimsPerReceipt(), `${what}.claims`)
    return {
      grant: yield* decodeGrant(grant!, `${what}.grant`),
      taskId: yield* hashField(taskId!, `${what}.taskId`),
      model: yield* hashField(model!, `${what}.model`),
      price: yield* uintField(price!, `${what}.price`),
      claims: [yield* decodeClaim(first!, `${what}.claims[0]`), yield* decodeClaim(second!, `${what}.claims[1]`)],
      request: yield* decodeRequest(request!, `${what}.request`)
    }
  })
}

export function encodeUsageOverran(p: UsageOverranPayload): RlpInput {
  return p.receipts.map((r) => [
    encodeGrant(r.grant),
    hashBytes(r.taskId),
    hashBytes(r.model),
    r.price,
    r.claims.map(encodeClaim),
    encodeRequest(r.request)
  ])
}

export function decodeUsageOverran(item: RlpItem): Either.Either<UsageOverranPayload, string> {
  return Either.map(boundedList(item, USAGE_RECEIPTS_MAX, "usage.overran.receipts", decodeReceipt), (receipts) => ({
    kind: "usage.overran" as const,
    receipts
  }))
}
