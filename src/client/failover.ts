/**
 * A paid call that fails over: the same developer's request tried on the
 * next AI gateway when one gives no answer (connection lost, node
 * unreachable, no reply in time).
 *
 * The task id is the digest of the signed request (chain, model, the grant's
 * nonce, the inputs' hash, the call's nonce), so every gateway tried gets
 * the SAME grant nonce and the SAME request nonce and makes the SAME task:
 * if a gateway that went silent had already signed its usage receipt, the
 * AI ledger settles that task id once — the other gateway's receipt is
 * refused `AlreadySettled` — and the developer is charged once for the
 * result it got. A fresh nonce on failover would be a second task, charged
 * again.
 *
 * Each gateway opens its own session from the grant: signed again for each
 * one (same nonce, cap and expiry; `issuedAt` now) because a gateway admits
 * a grant only within a minute of its signing, and a failover may come later.
 * A typed answer (`InferenceRejected`: no escrow, bad inputs, the task
 * failed uncharged…) is the call's answer and is not tried elsewhere.
 *
 *   const { result, url } = yield* inferWithFailover({ urls, key, chainId, model, spendMax, inputs })
 */
import { Clock, Data, Duration, Effect, Either } from "effect"
import type { Scope } from "effect"
import { sessionGrantDigest, signMessage } from "../../domain/ai/signedMessages.js"
import type { TensorJsonError } from "../../domain/ai/tensor.js"
import type { PrivateKey } from "../../domain/chain/keys.js"
import type { InferResult } from "../api/AiRpcs.js"
import { makeClient, type NodeClient } from "./index.js"
import { freshRequestNonce, signInferRequest } from "./taskRequest.js"

/** No gateway answered: what each one did. */
export class NoGatewayAnswered extends Data.TaggedError("NoGatewayAnswered")<{
  readonly tried: ReadonlyArray<{ readonly url: string; readonly reason: string }>
}> {
  override get message(): string {
    return `no gateway answered: ${this.tried.map((t) => `${t.url}: ${t.reason}`).join("; ")}`
  }
}

/** The gateway at `url` gave no answer (its connection failed or it replied nothing in time). */
class NoAnswer extends Data.TaggedError("NoAnswer")<{ readonly reason: string }> {}

/** A transport failure (the RPC client's own error), not an answer of the node. */
const isTransportFailure = (e: unknown): boolean => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "RpcClientError"

const reasonOf = (e: unknown): string => {
  let current: unknown = e
  let found: string | undefined
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !message.startsWith("An error has occurred")) found = message
    current = (current as { readonly cause?: unknown }).cause
  }
  return found ?? String(e)
}

/**
 * Run `call` on each node in turn until one answers: a transport failure or
 * no reply within `perNode` moves on to the next URL; any other error is the
 * answer. The connection to each node lives only for its attempt.
 */
export const withFailover = <A, E>(
  urls: ReadonlyArray<string>,
  perNode: Duration.DurationInput,
  call: (client: NodeClient, url: string) => Effect.Effect<A, E, Scope.Scope>,
  onFailover?: (url: string, reason: string) => Effect.Effect<void>
): Effect.Effect<{ readonly value: A; readonly url: string }, E | NoGatewayAnswered> =>
  Effect.gen(function* () {
    const tried: Array<{ url: string; reason: string }> = []
    for (const url of urls) {
      const attempt = yield* makeClient(url).pipe(
        Effect.flatMap((client) => call(client, url)),
        Effect.timeoutFail({ duration: perNode, onTimeout: () => new NoAnswer({ reason: `no reply within ${Duration.format(Duration.decode(perNode))}` }) }),
        Effect.catchIf(isTransportFailure, (e) => Effect.fail(new NoAnswer({ reason: reasonOf(e) }))),
        Effect.scoped,
        Effect.either
      )
      if (Either.isRight(attempt)) return { value: attempt.right, url }
      const e = attempt.left
      if (!(e instanceof NoAnswer)) return yield* Effect.fail(e as E)
      tried.push({ url, reason: e.reason })
      if (onFailover !== undefined) yield* onFailover(url, e.reason)
    }
    return yield* new NoGatewayAnswered({ tried })
  })

/** The arguments of one `infer` call on one gateway. */
export interface InferArgs {
  readonly session: string
  readonly inputs: unknown
  readonly task: string
  readonly nonce: string
  readonly signature: string
}

/** How one gateway is called: `client.infer` unless the caller streams. */
export type InferCall<E> = (client: NodeClient, args: InferArgs) => Effect.Effect<InferResult, E, Scope.Scope>

const plainInfer = (client: NodeClient, args: InferArgs) => client.infer(args)

export interface FailoverInfer<E> {
  /** The gateways, in the order to try them. */
  readonly urls: ReadonlyArray<string>
  /** The developer's key: it signs the grant and the request. */
  readonly key: PrivateKey
  readonly chainId: bigint
  readonly model: string
  /** The session grant's cap and expiry (ms since the epoch). */
  readonly spendMax: bigint
  readonly expiresAt: number
  /** The tensor JSON form. */
  readonly inputs: unknown
  /** The grant's and the request's nonces (fresh if not given): the same on every gateway tried. */
  readonly grantNonce?: string
  readonly nonce?: string
  /** How long one gateway may take to answer before the next is tried (default 2 minutes). */
  readonly perNode?: Duration.DurationInput
  /** Told each time a gateway gave no answer. */
  readonly onFailover?: (url: string, reason: string) => Effect.Effect<void>
  /** The call on one gateway (default `client.infer`); `--stream` passes its own. */
  readonly call?: InferCall<E>
}

/** One paid call, failed over across `urls` with the same grant nonce and the same request: one task id, charged once. */
export const inferWithFailover = <E = Effect.Effect.Error<ReturnType<typeof plainInfer>>>(o: FailoverInfer<E>) =>
  Effect.gen(function* () {
    const model = o.model.toLowerCase()
    const grantNonce = o.grantNonce ?? freshRequestNonce()
    const nonce = o.nonce ?? freshRequestNonce()
    const request = signInferRequest(o.key, { chainId: o.chainId, model, nonce: grantNonce }, o.inputs, nonce)
    if (Either.isLeft(request)) return yield* Effect.fail<TensorJsonError>(request.left)
    const signed = request.right
    const call = (o.call ?? plainInfer) as InferCall<E>
    const { url, value } = yield* withFailover(
      o.urls,
      o.perNode ?? "2 minutes",
      (client) =>
        Effect.gen(function* () {
          const issuedAt = yield* Clock.currentTimeMillis
          const grant = { chainId: o.chainId, model, issuedAt, expiresAt: o.expiresAt, spendMax: o.spendMax, nonce: grantNonce }
          const { session } = yield* client.session.open({
            publicKey: o.key.publicKey.hex,
            model,
            issuedAt,
            expiresAt: o.expiresAt,
            spendMax: o.spendMax,
            nonce: grantNonce,
            signature: signMessage(sessionGrantDigest(grant), o.key)
          })
          return yield* call(client, { session, inputs: o.inputs, ...signed })
        }),
      o.onFailover
    )
    return { result: value, url, task: signed.task }
  })
