/**
 * Where a command's private key comes from, in one place for every command
 * that signs: `--key-file PATH` (a 0600 file, `secretFile.ts`), the
 * `TOPAI_KEY` environment variable, or `--key HEX` (which leaves the key in
 * the shell history and the process list; kept for scripts and tests).
 * Exactly one of the options; the environment only when neither is given.
 */
import { Options } from "@effect/cli"
import { Effect, Option } from "effect"
import type { PrivateKey } from "../../domain/chain/keys.js"
import { BadInput, parsePrivateKey } from "./parse.js"
import { readSecretFile } from "./secretFile.js"

export const KEY_ENV = "TOPAI_KEY"

export interface KeySource {
  readonly hex: Option.Option<string>
  readonly file: Option.Option<string>
}

/** `--key HEX | --key-file PATH` (both optional here; `loadKey` decides). */
export const keyOption = (who: string): Options.Options<KeySource> =>
  Options.all({
    hex: Options.text("key").pipe(
      Options.optional,
      Options.withDescription(`${who}'s private key, 32 bytes hex (prefer --key-file or ${KEY_ENV}: a key on the command line is visible to other users)`)
    ),
    file: Options.text("key-file").pipe(
      Options.optional,
      Options.withDescription(`A file holding ${who.toLowerCase()}'s private key (hex, or the JSON of \`topai key new --json\`), mode 0600; or set ${KEY_ENV}`)
    )
  })

/** The key in a key file's text: bare hex, or JSON with `privateKey` (`topai key … --json`) or `secp256k1` (a validator key file). */
const keyOfFileText = (text: string, file: string): Effect.Effect<PrivateKey, BadInput> => {
  const trimmed = text.trim()
  let hex = trimmed
  if (trimmed.startsWith("{")) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch {
      return Effect.fail(new BadInput(`${file} is neither a hex key nor JSON`))
    }
    const record = parsed as { readonly privateKey?: unknown; readonly secp256k1?: unknown }
    const field = record.privateKey ?? record.secp256k1
    if (typeof field !== "string") return Effect.fail(new BadInput(`${file} holds JSON without a "privateKey" string`))
    hex = field
  }
  return parsePrivateKey(hex).pipe(Effect.mapError((e) => new BadInput(`${file}: ${e.message.replace(/^--key:? ?/, "")}`)))
}

const fromEnv = (env: NodeJS.ProcessEnv): Effect.Effect<PrivateKey, BadInput> =>
  parsePrivateKey(env[KEY_ENV] ?? "").pipe(Effect.mapError((e) => new BadInput(`${KEY_ENV}: ${e.message.replace(/^--key:? ?/, "")}`)))

/** The key, or None when no option is given (and, with `env`, no `TOPAI_KEY` is set). */
export const loadOptionalKey = (
  source: KeySource,
  options: { readonly env?: NodeJS.ProcessEnv | false } = {}
): Effect.Effect<Option.Option<PrivateKey>, BadInput> => {
  const env = options.env === undefined ? process.env : options.env
  if (Option.isSome(source.hex) && Option.isSome(source.file)) {
    return Effect.fail(new BadInput("give one of --key HEX or --key-file PATH, not both"))
  }
  if (Option.isSome(source.file)) {
    const file = source.file.value
    return readSecretFile(file, "key file").pipe(Effect.flatMap((text) => keyOfFileText(text, file)), Effect.map(Option.some))
  }
  if (Option.isSome(source.hex)) return Effect.map(parsePrivateKey(source.hex.value), Option.some)
  if (env !== false && env[KEY_ENV] !== undefined && env[KEY_ENV] !== "") return Effect.map(fromEnv(env), Option.some)
  return Effect.succeed(Option.none())
}

/** The key a command signs with; a clear error when none is given. */
export const loadKey = (source: KeySource, env: NodeJS.ProcessEnv = process.env): Effect.Effect<PrivateKey, BadInput> =>
  loadOptionalKey(source, { env }).pipe(
    Effect.flatMap(
      Option.match({
        onSome: Effect.succeed,
        onNone: () => Effect.fail(new BadInput(`no key: give --key-file PATH (mode 0600), set ${KEY_ENV}, or give --key HEX`))
      })
    )
  )
