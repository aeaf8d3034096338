/**
 * `topai infer MODEL --input FILE.json`: one paid inference. Signs a session
 * grant for the model (valid one hour), opens the session, sends the inputs
 * (the tensor JSON form) with the request for this task signed by the same key and prints the validated outputs with the task id,
 * the output fingerprint, the workers, the charge and the time — or, with
 * `--stream`, each stage of the task on stderr as it happens.
 *
 * `topai task show ID`: a task's status, workers, fingerprint and events.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { Args, Command, Options } from "@effect/cli"
import { Clock, Duration, Effect, Either, Option, Stream } from "effect"
import { decodeTensorMapJson, TensorJsonError } from "../../../domain/ai/tensor.js"
import { inferWithFailover, NoGatewayAnswered, withFailover, type InferArgs, type InferResult } from "../../client/index.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput } from "../parse.js"
import { bad, getModel, keyOption, loadKey, parseModelId, parseTaskId, taskText, withNode, type Client } from "./aiSupport.js"
import { NodeUnreachable } from "./query.js"

/** A session grant is valid this long. */
export const SESSION_TTL_MS = 60 * 60 * 1000

const modelArg = Args.text({ name: "MODEL" }).pipe(Args.withDescription("The model id"))
const input = Options.text("input").pipe(
  Options.withDescription('The inputs: a JSON file {"NAME": {"type": "float32", "dims": [..], "data": [..] | "dataBase64": ".."}, ...}')
)
const output = Options.text("output").pipe(Options.optional, Options.withDescription("Write the outputs JSON to this file instead of printing them"))
const stream = Options.boolean("stream").pipe(Options.withDescription("Print each stage of the task on stderr as it happens"))
const timeout = Options.integer("timeout").pipe(Options.withDefault(120), Options.withDescription("Seconds to wait for the result (default 120)"))

const readInputs = (path: string): Effect.Effect<unknown, BadInput> =>
  Effect.suspend(() => {
    if (!existsSync(path)) return Effect.fail(new BadInput(`no such file: ${path}`))
    let parsed: unknown
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"))
    } catch (e) {
      return Effect.fail(new BadInput(`${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`))
    }
    const tensors = decodeTensorMapJson(parsed)
    return Either.isLeft(tensors) ? Effect.fail(new BadInput(`${path}: ${tensors.left.message}`)) : Effect.succeed(parsed)
  })

interface InferOutput {
  readonly task: string
  readonly fingerprint: string
  readonly workers: ReadonlyArray<string>
  readonly charged: bigint
  readonly millis: number
  readonly outputs?: unknown
  readonly outputFile?: string
}

const inferText = (r: InferOutput): string =>
  [
    `task ${r.task}`,
    `  fingerprint  ${r.fingerprint}`,
    `  workers      ${r.workers.join(", ")}`,
    `  charged      ${r.charged}`,
    `  time         ${r.millis} ms`,
    r.outputFile !== undefined ? `  outputs      written to ${r.outputFile}` : `outputs\n${JSON.stringify(r.outputs)}`
  ].join("\n")

/** No node answered: one node keeps the single-node message. */
const unreachable = (urls: ReadonlyArray<string>, e: NoGatewayAnswered): Error =>
  urls.length === 1 && e.tried.length === 1 ? new NodeUnreachable({ url: e.tried[0]!.url, detail: e.tried[0]!.reason }) : e

/** `--stream`: each stage on stderr; the validated stage carries the whole result (and the charge), so a stream cut after it (the node died) loses nothing. */
const streamed = (client: Client, args: InferArgs) =>
  Effect.gen(function* () {
    let last: InferResult | undefined
    yield* client.infer.stream(args).pipe(
      Stream.runForEach((p) =>
        Effect.sync(() => {
          process.stderr.write(`  ${p.stage.padEnd(9)} ${p.detail}\n`)
          if (p.result !== undefined) last = p.result
        })
      ),
      Effect.catchAll((e) => (last === undefined ? Effect.fail(e) : Effect.void))
    )
    if (last === undefined) return yield* bad("the node ended the task's stream without a result")
    return last
  })

/** More gateways: tried in turn, with the same grant and request, when the one before gives no answer. */
const failover = Options.text("failover").pipe(
  Options.repeated,
  Options.withDescription(
    "Another node's RPC endpoint, tried when the ones before give no answer (lost connection, unreachable, --timeout) with the same signed request: the same task id, so the developer is charged once (repeatable)"
  )
)

const RPC_URL = /^(wss?|https?):\/\/[^/\s]+/

const inferCommand = Command.make(
  "infer",
  { model: modelArg, input, output, stream, timeout, key: keyOption("The developer"), rpcUrl, failover, json },
  (o) =>
    Effect.gen(function* () {
      const id = yield* parseModelId(o.model)
      const key = yield* loadKey(o.key)
      if (o.timeout <= 0) return yield* bad(`--timeout must be a positive number of seconds, got ${o.timeout}`)
      const urls = [o.rpcUrl, ...o.failover]
      for (const url of urls) if (!RPC_URL.test(url)) return yield* bad(`--rpc and --failover must be ws://HOST:PORT/ws or http://HOST:PORT/rpc, got "${url}"`)
      const inputs = yield* readInputs(o.input)
      const perNode = Duration.seconds(o.timeout)
      // One node's view of the model and the escrow, and the chain id: the first that answers.
      const { value: checked } = yield* withFailover(urls, perNode, (client) =>
        Effect.gen(function* () {
          const m = yield* getModel(client, id)
          if (m.status !== "Verified") {
            return yield* bad(`model ${id} is ${m.status}${m.reason === undefined ? "" : ` (${m.reason})`}: only a verified model serves calls`)
          }
          if (m.deprecated) return yield* bad(`model ${id} is deprecated: it takes no new calls`)
          const escrow = yield* client.escrow.get({ developer: key.publicKey.address, model: id })
          if (escrow.available < m.price) {
            return yield* bad(
              `insufficient escrow: ${escrow.available} available for model ${id}, a call costs ${m.price}; ` +
                `deposit with \`topai escrow deposit ${id} AMOUNT --key ...\``
            )
          }
          return { price: m.price, chainId: (yield* client.node.status()).chainId }
        })
      ).pipe(Effect.mapError((e) => (e instanceof NoGatewayAnswered ? unreachable(urls, e) : e)))
      const issuedAt = yield* Clock.currentTimeMillis
      const { result } = yield* inferWithFailover({
        urls,
        key,
        chainId: checked.chainId,
        model: id,
        // One call per command: the session may spend one call's price, and its grant is used once (on each gateway tried).
        spendMax: checked.price,
        expiresAt: issuedAt + SESSION_TTL_MS,
        inputs,
        perNode,
        onFailover: (url, reason) => Effect.sync(() => void process.stderr.write(`no answer from ${url} (${reason}): the same request to the next node\n`)),
        ...(o.stream ? { call: streamed } : {})
      }).pipe(
        Effect.mapError((e) =>
          e instanceof NoGatewayAnswered ? unreachable(urls, e) : e instanceof TensorJsonError ? new BadInput(`the inputs: ${e.message}`) : e
        )
      )
      let written: string | undefined
      if (Option.isSome(o.output)) {
        const path = o.output.value
        yield* Effect.try({
          try: () => writeFileSync(path, `${JSON.stringify(result.outputs)}\n`),
          catch: (e) => new BadInput(`cannot write ${path}: ${e instanceof Error ? e.message : String(e)}`)
        })
        written = path
      }
      const out: InferOutput = {
        task: result.task,
        fingerprint: result.fingerprint,
        workers: result.workers,
        charged: result.charged,
        millis: result.millis,
        ...(written === undefined ? { outputs: result.outputs } : { outputFile: written })
      }
      return out
    }).pipe(
      Effect.flatMap((r) => printResult(o.json, r, inferText)),
      reportErrors(o.json)
    )
).pipe(
  Command.withDescription(
    "Run MODEL on the inputs in --input (signed by the developer, paid from escrow); prints the validated outputs, task id, fingerprint, workers, charge and time"
  )
)

export { inferCommand }

const taskArg = Args.text({ name: "TASK" }).pipe(Args.withDescription("A task id, as `topai infer` prints it"))

const taskShow = Command.make("show", { task: taskArg, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const id = yield* parseTaskId(o.task)
    return yield* withNode(o.rpcUrl, (client) =>
      client.task.get({ task: id }).pipe(Effect.catchTag("NotFound", () => Effect.fail(new BadInput(`unknown task ${id}`))))
    )
  }).pipe(
    Effect.flatMap((t) => printResult(o.json, t, taskText)),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("Show a task: status, model, developer, price and charge, workers, fingerprint, events"))

export const taskCommand = Command.make("task").pipe(
  Command.withDescription("Look up inference tasks"),
  Command.withSubcommands([taskShow])
)
