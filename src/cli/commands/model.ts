/**
 * `topai model upload|list|show|price|deprecate`: a provider's side of the
 * AI shard.
 *
 * `upload` checks the manifest locally (and, when the file parses as ONNX,
 * that the shapes it gives fit the model's inputs), hashes the file, signs
 * and submits `model.register`, waits for its block, uploads the weights in
 * signed chunks with a progress line on stderr (skipped when the node
 * stores them already), then waits for the validators' verdict — and prints it:
 * verified (id, fingerprint, inputs and outputs) or rejected with the
 * reason (exit 1). Files that do not parse are the node's to judge: they end
 * rejected with a reason, recorded on the model.
 */
import { createHash } from "node:crypto"
import { existsSync, readFileSync, statSync } from "node:fs"
import { Args, Command, Options } from "@effect/cli"
import { Clock, Console, Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import { checkModelStatic } from "../../../domain/ai/legitimacy.js"
import { DEFAULT_SAMPLE_RATE_PER_MILLION, ModelManifest, parseShapeFlag } from "../../../domain/ai/manifest.js"
import type { ModelManifestEncoded } from "../../../domain/ai/manifest.js"
import { parseOnnxModel } from "../../../domain/ai/onnx/model.js"
import { DEFAULT_GPU_CLASSES } from "../../../domain/ai/worker/gpuClass.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { MANIFEST_BYTES_MAX } from "../../../domain/chain/transaction.js"
import { signWeightsChunk } from "../../../domain/ai/signedMessages.js"
import { BLOB_CHUNK_BYTES, UploadRejected } from "../../api/AiRpcs.js"
import type { ModelView } from "../../client/index.js"
import { json, rpcUrl } from "../options.js"
import { CommandFailed, printResult, reportErrors } from "../output.js"
import { BadInput, parseAddress, parseAmount } from "../parse.js"
import {
  APPLY_WAIT,
  bad,
  type Client,
  CALL_WAIT,
  aiFeeOption,
  findModel,
  getModel,
  keyOption,
  loadKey,
  modelListText,
  modelText,
  parseFee,
  parseModelId,
  pollUntil,
  submitSigned,
  tensorSpecsText,
  withNode
} from "./aiSupport.js"

// ---------------------------------------------------------------- the manifest from flags

const VALIDATION = /^(single)(?::(\d+))?$|^quorum:(\d+)\/(\d+)$/

/** `single`, `single:RATE` (re-executions per million tasks) or `quorum:K/N`. */
export const parseValidation = (text: string): Either.Either<ModelManifestEncoded["validation"] & object, string> => {
  const m = VALIDATION.exec(text.trim())
  if (m === null) {
    return Either.left(`--validation takes single, single:RATE (re-executions per million, 0 to 1000000) or quorum:K/N, got "${text}"`)
  }
  if (m[1] === "single") {
    const rate = m[2] === undefined ? DEFAULT_SAMPLE_RATE_PER_MILLION : Number(m[2])
    if (rate > 1_000_000) return Either.left(`--validation single:RATE takes a rate from 0 to 1000000 per million, got ${m[2]}`)
    return Either.right({ kind: "single", sampleRatePerMillion: rate })
  }
  const k = Number(m[3])
  const n = Number(m[4])
  if (k < 1 || n < 1 || k > n) return Either.left(`--validation quorum:K/N needs 1 ≤ K ≤ N, got "${text}"`)
  return Either.right({ kind: "quorum", k, n })
}

/** `NAME=V` or `NAME=V1,V2,...` (numbers) for `fixedInputs`. */
export const parseFixedFlag = (flag: string): Either.Either<readonly [string, ReadonlyArray<number>], string> => {
  const eq = flag.lastIndexOf("=")
  const name = flag.slice(0, eq).trim()
  const values = flag.slice(eq + 1).split(",").map((v) => v.trim())
  if (eq <= 0 || name === "" || values.some((v) => v === "" || !Number.isFinite(Number(v)))) {
    return Either.left(`--fixed takes NAME=VALUE or NAME=V1,V2,... with numbers (for example --fixed sr=16000), got "${flag}"`)
  }
  return Either.right([name, values.map(Number)] as const)
}

/** `--shape`/`--fixed` flags into a record, refusing a name given twice. */
const collect = (
  flags: ReadonlyArray<string>,
  parse: (flag: string) => Either.Either<readonly [string, ReadonlyArray<number>], string>,
  option: string
): Either.Either<Record<string, Array<number>>, string> => {
  const out: Record<string, Array<number>> = {}
  for (const flag of flags) {
    const parsed = parse(flag)
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    const [name, values] = parsed.right
    if (Object.hasOwn(out, name)) return Either.left(`${option} ${name} is given twice`)
    out[name] = [...values]
  }
  return Either.right(out)
}

const decodeManifest = Schema.decodeUnknownEither(ModelManifest, { errors: "all" })
const encodeManifest = Schema.encodeSync(ModelManifest)

/** The first problem of a decode, on one line: `field: message`. */
const firstProblem = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return error.message
  return issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
}

interface UploadFlags {
  readonly name: string
  readonly price: string
  readonly version: string
  readonly minGpu: string
  readonly license: string
  readonly description: string
  readonly shape: ReadonlyArray<string>
  /** `--max-shape NAME=D1,...`: the largest shape a request may give an input (default: its --shape). */
  readonly maxShape?: ReadonlyArray<string> | undefined
  /** `--input-bytes-max N`: all inputs of one request together (default: their bytes at the max shapes). */
  readonly inputBytesMax?: Option.Option<number> | undefined
  readonly fixed: ReadonlyArray<string>
  readonly validation: Option.Option<string>
  readonly tolerance: Option.Option<string>
}

/** The manifest the flags describe, checked as the chain will check it; its canonical JSON. */
export const manifestFromFlags = (o: UploadFlags): Either.Either<{ readonly manifest: ModelManifest; readonly text: string }, string> =>
  Either.gen(function* () {
    const price = o.price.trim().replaceAll("_", "")
    if (!/^[0-9]+$/.test(price)) return yield* Either.left(`--price must be a whole number of base units, got "${o.price}"`)
    if (!Object.hasOwn(DEFAULT_GPU_CLASSES, o.minGpu)) {
      return yield* Either.left(`--min-gpu must be one of ${Object.keys(DEFAULT_GPU_CLASSES).join(", ")}, got "${o.minGpu}"`)
    }
    const shapes = yield* collect(o.shape, parseShapeFlag, "--shape")
    const maxShapes = yield* collect(o.maxShape ?? [], (f) => Either.mapLeft(parseShapeFlag(f), (m) => m.replaceAll("--shape", "--max-shape")), "--max-shape")
    const inputBytesMax = o.inputBytesMax !== undefined && Option.isSome(o.inputBytesMax) ? o.inputBytesMax.value : undefined
    const fixedInputs = yield* collect(o.fixed, parseFixedFlag, "--fixed")
    const validation = Option.isSome(o.validation) ? yield* parseValidation(o.validation.value) : undefined
    let outputTolerance: number | undefined
    if (Option.isSome(o.tolerance)) {
      outputTolerance = Number(o.tolerance.value)
      if (o.tolerance.value.trim() === "" || !Number.isFinite(outputTolerance) || outputTolerance <= 0) {
        return yield* Either.left(`--tolerance must be a positive number (for example 1e-4), got "${o.tolerance.value}"`)
      }
    }
    const encoded: ModelManifestEncoded = {
      name: o.name,
      version: o.version,
      pricePerCall: price,
      minGpuClass: o.minGpu,
      license: o.license,
      description: o.description,
      shapes,
      ...(Object.keys(maxShapes).length === 0 ? {} : { maxShapes }),
      ...(inputBytesMax === undefined ? {} : { inputBytesMax }),
      fixedInputs,
      ...(validation === undefined ? {} : { validation }),
      ...(outputTolerance === undefined ? {} : { outputTolerance })
    }
    const decoded = decodeManifest(encoded)
    if (Either.isLeft(decoded)) return yield* Either.left(`bad manifest: ${firstProblem(decoded.left)}`)
    const text = JSON.stringify(encodeManifest(decoded.right))
    const bytes = Buffer.byteLength(text, "utf8")
    if (bytes > MANIFEST_BYTES_MAX) {
      return yield* Either.left(`the manifest is ${bytes} bytes of JSON, over the ${MANIFEST_BYTES_MAX} a transaction carries (shorten --description)`)
    }
    return { manifest: decoded.right, text }
  })

// ---------------------------------------------------------------- upload

const MIB = 1024 * 1024
const sizeText = (n: number) => (n >= MIB ? `${(n / MIB).toFixed(1)} MiB` : `${n} bytes`)

/** One progress line on stderr: rewritten in place on a terminal, a line per step otherwise. */
const progress = (sent: number, total: number): Effect.Effect<void> =>
  Effect.sync(() => {
    const percent = Math.floor((100 * sent) / total)
    const line = `  uploading ${String(percent).padStart(3)}%  ${sent} / ${total} bytes (${sizeText(sent)} of ${sizeText(total)})`
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${sent === total ? "\n" : ""}`)
    else process.stderr.write(`${line}\n`)
  })

const note = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

/** A call that must answer within CALL_WAIT. */
const bounded = <A, E>(effect: Effect.Effect<A, E>, what: string): Effect.Effect<A, E | Error> =>
  effect.pipe(Effect.timeoutFail({ duration: CALL_WAIT, onTimeout: () => new Error(`no answer from the node to ${what} within ${CALL_WAIT}`) }))

/**
 * Send the weights in chunks, each signed by the provider (the node takes
 * weights only for a model the chain shows registered by that key); false
 * when the node had them already.
 */
const uploadWeights = (client: Client, key: PrivateKey, bytes: Uint8Array, hash: string): Effect.Effect<boolean, Error> =>
  Effect.gen(function* () {
    const size = bytes.length
    const { chainId } = yield* bounded(client.node.status(), "node.status")
    const send = (offset: number, chunk: Uint8Array) =>
      bounded(client.model.upload(signWeightsChunk(key, chainId, hash, size, offset, chunk)), "model.upload")
    // An empty chunk at offset 0: says whether the node stores these weights already (and starts the upload afresh).
    // Until the node has applied the registration's block it knows no such model: ask again for a while.
    const start = yield* Clock.currentTimeMillis
    const probe = yield* Effect.gen(function* () {
      for (;;) {
        const r = yield* Effect.either(send(0, new Uint8Array(0)))
        if (Either.isRight(r)) return r.right
        const waited = (yield* Clock.currentTimeMillis) - start
        const refused = r.left instanceof UploadRejected ? r.left : undefined
        if (refused?.reason === "UnknownModel" && waited < Duration.toMillis(Duration.decode(APPLY_WAIT))) {
          yield* Effect.sleep("250 millis")
          continue
        }
        return yield* Effect.fail(refused === undefined ? r.left : new BadInput(refused.message))
      }
    })
    if (probe.complete) return false
    for (let offset = 0; offset < size; offset += BLOB_CHUNK_BYTES) {
      const chunk = bytes.subarray(offset, Math.min(size, offset + BLOB_CHUNK_BYTES))
      const r = yield* send(offset, chunk).pipe(Effect.catchTag("UploadRejected", (e) => Effect.fail(new BadInput(e.message))))
      yield* progress(offset + chunk.length, size)
      if (r.complete && offset + chunk.length < size) return false // someone else finished it meanwhile
    }
    return true
  })

/**
 * Poll the model until the validators' verdict (not Pending), for at most
 * `within`. A model the node does not show at all after its block is an
 * error of its own: the node did not take the registration.
 */
const awaitVerdict = (client: Client, id: string, within: Duration.Duration): Effect.Effect<ModelView, Error> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const unseenLimit = Duration.toMillis(Duration.decode(APPLY_WAIT))
    for (;;) {
      const found = yield* bounded(findModel(client, id), "model.get")
      const now = yield* Clock.currentTimeMillis
      if (Option.isSome(found) && found.value.status !== "Pending") return found.value
      if (Option.isNone(found) && now - start > unseenLimit) {
        return yield* bad(`the node does not show model ${id} ${Math.round((now - start) / 1000)} s after its block: it did not take the registration (see the node's log)`)
      }
      if (now - start > Duration.toMillis(within)) {
        return yield* bad(`model ${id} is still Pending after ${Duration.format(within)}; see it later with \`topai model show ${id}\``)
      }
      yield* Effect.sleep("250 millis")
    }
  })

const verdictText = (m: ModelView): string =>
  m.status === "Verified"
    ? [
        `model ${m.id} verified`,
        `  name         ${m.name} ${m.version}`,
        `  fingerprint  ${m.referenceFingerprint ?? "-"}`,
        `  inputs       ${tensorSpecsText(m.inputs)}`,
        `  outputs      ${tensorSpecsText(m.outputs)}`,
        `  price        ${m.price} per call, min GPU ${m.minGpuClass}`
      ].join("\n")
    : [`model ${m.id} rejected`, `  reason  ${m.reason ?? "(none given)"}`].join("\n")

const file = Args.text({ name: "FILE" }).pipe(Args.withDescription("The ONNX model file"))
const name = Options.text("name").pipe(Options.withDescription("The model's name"))
const price = Options.text("price").pipe(Options.withDescription("Price per inference call, in base units"))
/** `--version` is @effect/cli's own flag (it prints topai's version): main.ts passes `model upload --version V` on as this. */
export const MODEL_VERSION_OPTION = "model-version"
const version = Options.text(MODEL_VERSION_OPTION).pipe(
  Options.withDefault("1"),
  Options.withDescription("The model's version (default 1); `--version V` works too")
)
const minGpu = Options.text("min-gpu").pipe(
  Options.withDefault("CPU"),
  Options.withDescription(`Minimum GPU class that may run it: ${Object.keys(DEFAULT_GPU_CLASSES).join(", ")} (default CPU)`)
)
const license = Options.text("license").pipe(Options.withDefault(""), Options.withDescription("The model's license, e.g. MIT"))
const description = Options.text("description").pipe(Options.withDefault(""), Options.withDescription("What the model does"))
const shape = Options.text("shape").pipe(
  Options.repeated,
  Options.withDescription("The whole shape of an input with symbolic dims, NAME=D1,D2,... (repeatable), e.g. --shape input=1,576")
)
const maxShape = Options.text("max-shape").pipe(
  Options.repeated,
  Options.withDescription(
    "The largest shape a request may give an input with symbolic dims, NAME=D1,D2,... (repeatable; default: its --shape), e.g. --max-shape input=1,4096"
  )
)
const inputBytesMax = Options.integer("input-bytes-max").pipe(
  Options.optional,
  Options.withDescription("The most bytes all inputs of one request may hold together (default: their bytes at the max shapes)")
)
const fixed = Options.text("fixed").pipe(
  Options.repeated,
  Options.withDescription("A fixed value for a settings input, NAME=V or NAME=V1,V2,... (repeatable), e.g. --fixed sr=16000")
)
const validation = Options.text("validation").pipe(
  Options.optional,
  Options.withDescription(
    `How results are validated: single[:RATE] (one worker, RATE re-executions per million; default single:${DEFAULT_SAMPLE_RATE_PER_MILLION}) or quorum:K/N`
  )
)
const tolerance = Options.text("tolerance").pipe(
  Options.optional,
  Options.withDescription("Absolute tolerance of float outputs in fingerprints (default 1e-4)")
)
const waitSeconds = Options.integer("timeout").pipe(
  Options.withDefault(300),
  Options.withDescription("Seconds to wait for the verdict (default 300)")
)

const readModelFile = (path: string): Effect.Effect<Uint8Array, BadInput> =>
  Effect.suspend(() => {
    if (!existsSync(path)) return Effect.fail(new BadInput(`no such file: ${path}`))
    if (!statSync(path).isFile()) return Effect.fail(new BadInput(`not a file: ${path}`))
    const bytes = readFileSync(path)
    return bytes.length === 0 ? Effect.fail(new BadInput(`${path} is empty`)) : Effect.succeed(new Uint8Array(bytes))
  })

/**
 * Problems of the manifest itself against a file that parses as ONNX
 * (missing or wrong shapes, fixed inputs that do not fit). Anything else
 * wrong with the file is the validators' to find and record.
 */
const checkShapesLocally = (bytes: Uint8Array, manifest: ModelManifest): Effect.Effect<void, BadInput> => {
  const parsed = parseOnnxModel(bytes)
  if (Either.isLeft(parsed)) return Effect.void
  const checked = checkModelStatic(parsed.right, manifest)
  if (Either.isRight(checked)) return Effect.void
  const problem = checked.left
  return problem.reason === "MissingShape" || problem.reason === "BadManifest"
    ? Effect.fail(new BadInput(`${problem.detail} (checked locally, nothing was sent)`))
    : Effect.void
}

const upload = Command.make(
  "upload",
  { file, name, price, version, minGpu, license, description, shape, maxShape, inputBytesMax, fixed, validation, tolerance, key: keyOption("The provider"), fee: aiFeeOption, timeout: waitSeconds, rpcUrl, json },
  (o) =>
    Effect.gen(function* () {
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      const { manifest, text } = yield* Either.match(manifestFromFlags(o), {
        onLeft: (e) => Effect.fail(new BadInput(e)),
        onRight: Effect.succeed
      })
      if (o.timeout <= 0) return yield* bad(`--timeout must be a positive number of seconds, got ${o.timeout}`)
      const bytes = yield* readModelFile(o.file)
      yield* checkShapesLocally(bytes, manifest)
      const hash = `0x${createHash("sha256").update(bytes).digest("hex")}`
      if (!o.json) yield* note(`${o.file}: ${bytes.length} bytes, sha256 ${hash}`)
      return yield* withNode(
        o.rpcUrl,
        (client) =>
          Effect.gen(function* () {
            // Registered first: the node takes weights only for a model the chain shows, from its provider.
            const tx = yield* bounded(
              submitSigned(client, key, { kind: "model.register", weightsHash: hash as Hash32, sizeBytes: BigInt(bytes.length), manifest: text }, fee),
              "model.register"
            )
            yield* note(`  model.register ${tx.hash} included in block ${tx.shard}/${tx.blockHeight ?? "?"}`)
            const sent = yield* uploadWeights(client, key, bytes, hash)
            if (!sent) yield* note("  the node stores these weights already: upload skipped")
            yield* note("  waiting for the verdict …")
            return yield* awaitVerdict(client, tx.hash, Duration.seconds(o.timeout))
          }),
        Duration.infinity
      )
    }).pipe(
      reportErrors(o.json),
      Effect.flatMap((m) =>
        printResult(o.json, m, verdictText).pipe(
          Effect.zipRight(
            m.status === "Verified"
              ? Effect.void
              : Console.error(`error: model ${m.id} was rejected: ${m.reason ?? "no reason given"}`).pipe(
                  Effect.zipRight(Effect.fail(new CommandFailed({ message: "model rejected" })))
                )
          )
        )
      )
    )
).pipe(
  Command.withDescription(
    "Upload an ONNX model and register it (signed); waits for the validators' verdict and prints it (exit 1 if rejected)"
  )
)

// ---------------------------------------------------------------- list, show

const provider = Options.text("provider").pipe(Options.optional, Options.withDescription("Only this provider's models (an address)"))

const list = Command.make("list", { provider, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const who = Option.isSome(o.provider) ? yield* parseAddress(o.provider.value, "--provider") : undefined
    return yield* withNode(o.rpcUrl, (client) => client.model.list(who === undefined ? {} : { provider: who }))
  }).pipe(
    Effect.flatMap((models) => printResult(o.json, models, modelListText)),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("List the node's models: id, status, name, price"))

const modelArg = Args.text({ name: "MODEL" }).pipe(Args.withDescription("A model id (its registration's transaction hash)"))

const show = Command.make("show", { model: modelArg, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const id = yield* parseModelId(o.model)
    return yield* withNode(o.rpcUrl, (client) => getModel(client, id))
  }).pipe(
    Effect.flatMap((m) => printResult(o.json, m, modelText)),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("Show one model: status, manifest, fingerprint, inputs and outputs, or why it was rejected"))

// ---------------------------------------------------------------- price, deprecate

/** The checks the model actor will make, made first so a refused change costs no fee. */
const ownModel = (client: Client, id: string, key: PrivateKey, action: string) =>
  Effect.gen(function* () {
    const m = yield* getModel(client, id)
    const me = key.publicKey.address
    if (m.provider !== me) return yield* bad(`only the provider ${m.provider} can ${action} model ${id}; --key is ${me}`)
    if (m.status === "Rejected") return yield* bad(`model ${id} was rejected: it cannot be changed`)
    if (m.deprecated) return yield* bad(`model ${id} is deprecated already`)
    return m
  })

const newPrice = Args.text({ name: "PRICE" }).pipe(Args.withDescription("The new price per call, in base units"))

const priceCommand = Command.make(
  "price",
  { model: modelArg, price: newPrice, key: keyOption("The provider"), fee: aiFeeOption, rpcUrl, json },
  (o) =>
    Effect.gen(function* () {
      const id = yield* parseModelId(o.model)
      const value = yield* parseAmount(o.price, "PRICE")
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          yield* ownModel(client, id, key, "reprice")
          const tx = yield* submitSigned(client, key, { kind: "model.price", model: id as Hash32, price: value }, fee)
          const m = yield* pollUntil(
            findModel(client, id).pipe(Effect.map(Option.filter((m) => m.price === value))),
            { within: APPLY_WAIT, onTimeout: () => new Error(`model.price ${tx.hash} is in a block, but the model's price did not change: the node refused it (see its log)`) }
          )
          return { tx: tx.hash, model: m }
        })
      )
    }).pipe(
      Effect.flatMap((r) => printResult(o.json, r, (r) => `model ${r.model.id}: price ${r.model.price} per call (tx ${r.tx})`)),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("Change a model's price per call (signed by its provider)"))

const deprecate = Command.make("deprecate", { model: modelArg, key: keyOption("The provider"), fee: aiFeeOption, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const id = yield* parseModelId(o.model)
    const key = yield* loadKey(o.key)
    const fee = yield* parseFee(o.fee)
    return yield* withNode(o.rpcUrl, (client) =>
      Effect.gen(function* () {
        const m0 = yield* ownModel(client, id, key, "deprecate")
        if (m0.status !== "Verified") return yield* bad(`model ${id} is ${m0.status}: only a verified model is deprecated`)
        const tx = yield* submitSigned(client, key, { kind: "model.deprecate", model: id as Hash32 }, fee)
        const m = yield* pollUntil(findModel(client, id).pipe(Effect.map(Option.filter((m) => m.deprecated))), {
          within: APPLY_WAIT,
          onTimeout: () => new Error(`model.deprecate ${tx.hash} is in a block, but the model is not deprecated: the node refused it (see its log)`)
        })
        return { tx: tx.hash, model: m }
      })
    )
  }).pipe(
    Effect.flatMap((r) => printResult(o.json, r, (r) => `model ${r.model.id} deprecated: no new tasks (tx ${r.tx})`)),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("Deprecate a model: no new tasks; its history stays (signed by its provider)"))

export const modelCommand = Command.make("model").pipe(
  Command.withDescription("Upload, list, show, reprice and deprecate AI models"),
  Command.withSubcommands([upload, list, show, priceCommand, deprecate])
)
