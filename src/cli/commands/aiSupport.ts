/**
 * What the AI shard's commands share: a client with a deadline of the
 * command's choosing, the `--key` and `--fee` options, model ids, signed
 * transactions submitted and waited for, polling the node until it shows
 * what the chain decided, and the text forms of the node's views.
 */
import { Options } from "@effect/cli"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { Duration, Effect, Either, Option } from "effect"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { DEFAULT_FEE } from "../../../domain/chain/genesis.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { isAiShardKind, isBeaconKind, TransactionBody, signTransaction } from "../../../domain/chain/transaction.js"
import { BEACON_SHARD } from "../../../domain/chain/sharding.js"
import type { TransactionPayload } from "../../../domain/chain/transaction.js"
import { makeClient } from "../../client/index.js"
import type { EscrowView, ModelView, NodeClient, TaskView } from "../../client/index.js"
import { BadInput, parseAmount } from "../parse.js"
import { CALL_TIMEOUT, NodeUnreachable } from "./query.js"

export type Client = NodeClient

/** A user-facing failure: printed as `error: MESSAGE`, exit 1. */
export const bad = (message: string): Effect.Effect<never, BadInput> => Effect.fail(new BadInput(message))

const RPC_URL = /^(wss?|https?):\/\/[^/\s]+/
const HASH = /^0x[0-9a-f]{64}$/

/** The innermost readable reason of a transport failure. */
const reasonOf = (error: unknown): string => {
  let found: string | undefined
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !message.startsWith("An error has occurred")) found = message
    const next = current as { readonly cause?: unknown; readonly error?: unknown }
    current = next.cause ?? next.error
  }
  return found ?? String(error)
}

/**
 * Run `f` with a client of the node at `url`; the whole of it must end
 * within `timeout` (a command that waits for a verdict passes its own).
 */
export const withNode = <A, E>(
  url: string,
  f: (client: Client) => Effect.Effect<A, E>,
  timeout: Duration.DurationInput = CALL_TIMEOUT
): Effect.Effect<A, E | NodeUnreachable | BadInput | Error> =>
  RPC_URL.test(url)
    ? makeClient(url).pipe(
        Effect.flatMap(f),
        Effect.mapError((e) => (e instanceof RpcClientError ? new NodeUnreachable({ url, detail: reasonOf(e.cause) }) : e)),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new Error(`no answer from ${url} within ${Duration.format(Duration.decode(timeout))}`)
        }),
        Effect.scoped
      )
    : Effect.fail(new BadInput(`--rpc must be ws://HOST:PORT/ws or http://HOST:PORT/rpc, got "${url}"`))

// ---------------------------------------------------------------- options and arguments

/** `--key HEX | --key-file PATH | TOPAI_KEY` (`../keySource.ts`). */
export { keyOption, loadKey } from "../keySource.js"

export const feeOption = Options.text("fee").pipe(
  Options.withDefault(String(DEFAULT_FEE)),
  Options.withDescription(`Transaction fee in base units, burned (default ${DEFAULT_FEE})`)
)

/** The fee of an AI-shard transaction (model.*): paid from the sender's AI-shard balance, which a provider does not have. */
export const aiFeeOption = Options.text("fee").pipe(
  Options.withDefault("0"),
  Options.withDescription("Transaction fee in base units, burned; paid from your balance on the AI shard (default 0)")
)

/** A model is named by its registration's transaction hash. */
export const parseModelId = (text: string, what = "MODEL"): Effect.Effect<string, BadInput> => {
  const id = text.trim().toLowerCase()
  return HASH.test(id)
    ? Effect.succeed(id)
    : Effect.fail(new BadInput(`${what} must be a model id (0x and 64 hex digits, as \`topai model list\` shows), got "${text}"`))
}

export const parseTaskId = (text: string): Effect.Effect<string, BadInput> => {
  const id = text.trim().toLowerCase()
  return HASH.test(id) ? Effect.succeed(id) : Effect.fail(new BadInput(`TASK must be a task id (0x and 64 hex digits), got "${text}"`))
}

export const parseFee = (text: string) => parseAmount(text, "--fee")

// ---------------------------------------------------------------- node calls

/** The model, or a clear error when the node does not know it. */
export const getModel = (client: Client, model: string): Effect.Effect<ModelView, BadInput | Error> =>
  client.model.get({ model }).pipe(
    Effect.catchTag("NotFound", () =>
      Effect.fail(new BadInput(`unknown model ${model} (\`topai model list\` shows the node's models)`))
    )
  )

/** `model.get`, None while the node has not seen the model yet. */
export const findModel = (client: Client, model: string) =>
  client.model.get({ model }).pipe(
    Effect.map(Option.some),
    Effect.catchTag("NotFound", () => Effect.succeed(Option.none<ModelView>()))
  )

export interface Submitted {
  readonly hash: string
  readonly shard: number
  readonly blockHeight: number | undefined
}

/**
 * Sign `payload` with `key` (the account's next pending nonce), submit it
 * and wait for its block. A transaction that execution rejected is an error
 * with the ledger's reason.
 */
export const submitSigned = (
  client: Client,
  key: PrivateKey,
  payload: TransactionPayload,
  fee: bigint
): Effect.Effect<Submitted, BadInput | Error> =>
  Effect.gen(function* () {
    const status = yield* client.node.status()
    // Beacon kinds (validator.register, validator.unbond) count the nonce of the sender's beacon account;
    // the AI shard's kinds (model.*) that of its AI-shard account.
    const aiShard = status.shards.find((s) => s.kind === "ai")?.shard
    const shard = isBeaconKind(payload.kind) ? BEACON_SHARD : isAiShardKind(payload.kind) ? aiShard : undefined
    const account = yield* client.account.get({
      address: key.publicKey.address,
      ...(shard === undefined ? {} : { shard })
    })
    const body = yield* Effect.try({
      try: () => new TransactionBody({ chainId: status.chainId, nonce: account.pendingNonce, fee, payload }),
      catch: (e) => new BadInput(`cannot build the ${payload.kind} transaction: ${e instanceof Error ? e.message : String(e)}`)
    })
    const tx = signTransaction(body, key)
    const r = yield* client.tx.submit({ raw: bytesToHex(tx.encoded), wait: true })
    if (r.status === "rejected") {
      const view = yield* client.tx.get({ hash: r.hash }).pipe(Effect.option)
      const reason = Option.isSome(view) && view.value.reason !== undefined ? view.value.reason : "no reason given"
      return yield* bad(`${payload.kind} ${r.hash} was rejected at execution in block ${r.shard}/${r.blockHeight}: ${reason}`)
    }
    return { hash: r.hash, shard: r.shard, blockHeight: r.blockHeight }
  })

/**
 * Poll `probe` every `every` until it gives Some, for at most `within`;
 * then fail with `onTimeout`.
 */
export const pollUntil = <A, E>(
  probe: Effect.Effect<Option.Option<A>, E>,
  options: { readonly within: Duration.DurationInput; readonly every?: Duration.DurationInput; readonly onTimeout: () => Error }
): Effect.Effect<A, E | Error> => {
  const every = options.every ?? "200 millis"
  const loop: Effect.Effect<A, E> = probe.pipe(
    Effect.flatMap((found) => (Option.isSome(found) ? Effect.succeed(found.value) : Effect.sleep(every).pipe(Effect.zipRight(loop))))
  )
  return loop.pipe(Effect.timeoutFail({ duration: options.within, onTimeout: options.onTimeout }))
}

/** One call's deadline inside a long command (upload, infer). */
export const CALL_WAIT = CALL_TIMEOUT

/** How long a command waits for the node to show what a block it waited for decided. */
export const APPLY_WAIT = "15 seconds"

// ---------------------------------------------------------------- text

const dimsText = (dims: ReadonlyArray<number | string>) => `[${dims.map((d) => (d === "" ? "?" : String(d))).join(", ")}]`

export const tensorSpecsText = (specs: ModelView["inputs"]): string =>
  specs.length === 0 ? "-" : specs.map((s) => `${s.name} ${s.type} ${dimsText(s.dims)}`).join("; ")

export const modelStatusText = (m: ModelView): string => (m.deprecated ? `${m.status}, deprecated` : m.status)

export const modelText = (m: ModelView): string =>
  [
    `model ${m.id}  ${m.name} ${m.version}  ${modelStatusText(m)}`,
    `  provider     ${m.provider}`,
    `  price        ${m.price} per call`,
    `  min GPU      ${m.minGpuClass}`,
    ...(m.license === "" ? [] : [`  license      ${m.license}`]),
    ...(m.description === "" ? [] : [`  description  ${m.description}`]),
    `  weights      ${m.weightsHash} (${m.sizeBytes} bytes${m.weightsUploaded ? "" : ", not uploaded yet"})`,
    `  attestations ${m.attestations}`,
    ...(m.referenceFingerprint === undefined ? [] : [`  fingerprint  ${m.referenceFingerprint}`]),
    ...(m.status === "Verified" ? [`  inputs       ${tensorSpecsText(m.inputs)}`, `  outputs      ${tensorSpecsText(m.outputs)}`] : []),
    ...(m.reason === undefined ? [] : [`  reason       ${m.reason}`])
  ].join("\n")

export const modelListText = (models: ReadonlyArray<ModelView>): string =>
  models.length === 0
    ? "no models"
    : models
        .map((m) => `${m.id}  ${modelStatusText(m).padEnd(9)}  ${m.name} ${m.version}  price ${m.price}  min GPU ${m.minGpuClass}`)
        .join("\n")

export const escrowText = (e: EscrowView): string =>
  [
    `escrow of ${e.developer} for model ${e.model}`,
    `  deposited  ${e.deposited}`,
    `  available  ${e.available}`,
    `  reserved   ${e.reserved}`,
    `  captured   ${e.captured}`,
    ...(e.onLedger === undefined ? [] : [`  on ledger  ${e.onLedger} (the AI shard's figure; ${e.unsettled ?? 0n} captured here awaits settlement)`])
  ].join("\n")

export const taskText = (t: TaskView): string =>
  [
    `task ${t.id}  ${t.status}`,
    `  model      ${t.model}`,
    `  developer  ${t.developer}`,
    `  price      ${t.price}${t.charged ? " (charged)" : " (not charged)"}`,
    `  workers    ${t.workers.length === 0 ? "-" : t.workers.join(", ")}`,
    ...(t.fingerprint === undefined ? [] : [`  fingerprint ${t.fingerprint}`]),
    `  retries    ${t.retries}`,
    `  events     ${t.events.map((e) => e.type).join(" → ")}`
  ].join("\n")

/** Either's Left as a BadInput with `prefix`. */
export const orBadInput = <A>(e: Either.Either<A, string>, prefix = ""): Effect.Effect<A, BadInput> =>
  Either.isLeft(e) ? Effect.fail(new BadInput(`${prefix}${e.left}`)) : Effect.succeed(e.right)
