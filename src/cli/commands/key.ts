/** Key commands: make a fresh key, or show a devnet genesis account. */
import { randomBytes } from "node:crypto"
import { Args, Command } from "@effect/cli"
import { Effect, Either } from "effect"
import { PrivateKey, devKey } from "../../../domain/chain/keys.js"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { json } from "../options.js"
import { printResult, reportErrors } from "../output.js"

const describeKey = (key: PrivateKey) => ({
  privateKey: bytesToHex(key.exportBytes()),
  publicKey: key.publicKey.hex,
  address: key.publicKey.address
})

const keyText = (k: ReturnType<typeof describeKey>) =>
  [`address     ${k.address}`, `public key  ${k.publicKey}`, `private key ${k.privateKey}`].join("\n")

/** A fresh key from the OS CSPRNG (a miss on the scalar range has probability ~2^-128; retry then). */
const freshKey: Effect.Effect<PrivateKey> = Effect.suspend(() => {
  const key = PrivateKey.fromBytes(randomBytes(32))
  return Either.isRight(key) ? Effect.succeed(key.right) : freshKey
})

const keyNew = Command.make("new", { json }, ({ json }) =>
  freshKey.pipe(
    Effect.flatMap((key) => printResult(json, describeKey(key), keyText)),
    reportErrors(json)
  )
).pipe(Command.withDescription("Make a new secp256k1 key and print its address (keep the private key secret)"))

/** A bound on dev account indexes, to catch typos. */
export const DEV_ACCOUNTS_SHOWN_MAX = 1_000_000

const index = Args.integer({ name: "N" }).pipe(Args.withDescription("Index of the dev account, from 0"))

const keyDev = Command.make("dev", { index, json }, ({ index, json }) =>
  Effect.suspend((): Effect.Effect<PrivateKey, Error> =>
    index < 0 || index >= DEV_ACCOUNTS_SHOWN_MAX
      ? Effect.fail(new Error(`N must be from 0 to ${DEV_ACCOUNTS_SHOWN_MAX - 1}`))
      : Effect.succeed(devKey(index))
  ).pipe(
    Effect.flatMap((key) => printResult(json, { index, ...describeKey(key) }, (k) => `dev account ${index}\n${keyText(k)}`)),
    reportErrors(json)
  )
).pipe(
  Command.withDescription("Show deterministic dev account N of the devnet genesis (public keys: for devnets only)")
)

export const keyCommand = Command.make("key").pipe(
  Command.withDescription("Make and show keys"),
  Command.withSubcommands([keyNew, keyDev])
)
