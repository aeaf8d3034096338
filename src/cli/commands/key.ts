/**
 * Key commands: make a fresh key, or show a devnet genesis account. With
 * `--out FILE` the private key goes into a new 0600 file (for `--key-file`)
 * and is not printed.
 */
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { PrivateKey, devKey } from "../../../domain/chain/keys.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { json } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput } from "../parse.js"
import { writeSecretFile } from "../secretFile.js"

const describeKey = (key: PrivateKey) => ({
  privateKey: bytesToHex(key.exportBytes()),
  publicKey: key.publicKey.hex,
  address: key.publicKey.address
})

type KeyView = { readonly address: string; readonly publicKey: string; readonly privateKey?: string; readonly keyFile?: string }

const keyText = (k: KeyView) =>
  [
    `address     ${k.address}`,
    `public key  ${k.publicKey}`,
    k.keyFile === undefined ? `private key ${k.privateKey}` : `private key in ${k.keyFile} (mode 0600; use --key-file ${k.keyFile})`
  ].join("\n")

const out = Options.text("out").pipe(
  Options.optional,
  Options.withDescription("Write the private key to this new file (mode 0600) instead of printing it; then sign with --key-file FILE")
)

/** The key's view: printed whole, or with its private key written to `out` (a new file) instead. */
const keyView = (key: PrivateKey, out: Option.Option<string>): Effect.Effect<KeyView, BadInput> => {
  const { privateKey, ...shown } = describeKey(key)
  if (Option.isNone(out)) return Effect.succeed({ ...shown, privateKey })
  const file = out.value
  if (existsSync(file)) return Effect.fail(new BadInput(`${file} already exists; a key file is never overwritten`))
  return Effect.as(writeSecretFile(file, `${privateKey}\n`), { ...shown, keyFile: file })
}

/** A fresh key from the OS CSPRNG (a miss on the scalar range has probability ~2^-128; retry then). */
const freshKey: Effect.Effect<PrivateKey> = Effect.suspend(() => {
  const key = PrivateKey.fromBytes(randomBytes(32))
  return Either.isRight(key) ? Effect.succeed(key.right) : freshKey
})

const keyNew = Command.make("new", { out, json }, ({ out, json }) =>
  freshKey.pipe(
    Effect.flatMap((key) => keyView(key, out)),
    Effect.flatMap((view) => printResult(json, view, keyText)),
    reportErrors(json)
  )
).pipe(Command.withDescription("Make a new secp256k1 key and print its address (keep the private key secret)"))

/** A bound on dev account indexes, to catch typos. */
export const DEV_ACCOUNTS_SHOWN_MAX = 1_000_000

const index = Args.integer({ name: "N" }).pipe(Args.withDescription("Index of the dev account, from 0"))

const keyDev = Command.make("dev", { index, out, json }, ({ index, out, json }) =>
  Effect.suspend((): Effect.Effect<PrivateKey, Error> =>
    index < 0 || index >= DEV_ACCOUNTS_SHOWN_MAX
      ? Effect.fail(new Error(`N must be from 0 to ${DEV_ACCOUNTS_SHOWN_MAX - 1}`))
      : Effect.succeed(devKey(index))
  ).pipe(
    Effect.flatMap((key) => keyView(key, out)),
    Effect.flatMap((view) => printResult(json, { index, ...view }, (k) => `dev account ${index}\n${keyText(k)}`)),
    reportErrors(json)
  )
).pipe(
  Command.withDescription("Show deterministic dev account N of the devnet genesis (public keys: for devnets only)")
)

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("Make and show keys"),
  Command.withSubcommands([keyNew, keyDev])
)
