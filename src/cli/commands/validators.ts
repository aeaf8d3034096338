/**
 * The beacon's validator registry from the command line:
 *
 *   topai validator stake --amount N --key HEX          send N to your own beacon account (your stake)
 *   topai validator register (--bls-seed TEXT | --dev-index I) --endpoint URL [--key HEX]
 *                                                       join (or update) the registry with a BLS key and its proof of possession
 *   topai validator unbond --key HEX                    leave at the end of the epoch; the beacon balance comes back
 *   topai validators [--epoch N]                        the registry and the committees of an epoch
 *
 * Register and unbond are beacon transactions: the beacon account pays the
 * fee. `--dev-index I` uses devnet validator I's deterministic keys (its BLS
 * key, and its account key unless `--key` is given).
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import type { ValidatorsView } from "../../client/index.js"
import { bytesToHex, utf8 } from "../../../domain/chain/hex.js"
import { ENDPOINT_CHARS_MAX } from "../../../domain/chain/transaction.js"
import { devValidatorKeys } from "../../../domain/chain/validators.js"
import { blsKeyFromSeed, proofOfPossession } from "../../../domain/consensus/bls.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput, parseAmount } from "../parse.js"
import { loadOptionalKey } from "../keySource.js"
import { fields, table } from "../table.js"
import { feeOption, keyOption, loadKey, parseFee, submitSigned, withNode } from "./aiSupport.js"

const DEV_INDEX_MAX = 10_000

const stake = Command.make(
  "stake",
  {
    amount: Options.text("amount").pipe(Options.withDescription("Base units to add to your stake (moved to your beacon account)")),
    key: keyOption("The validator account"),
    fee: feeOption,
    rpcUrl,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const amount = yield* parseAmount(o.amount, "--amount", { positive: true })
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const tx = yield* submitSigned(client, key, { kind: "validator.stake", amount }, fee)
          return { tx: tx.hash, block: `${tx.shard}/${tx.blockHeight ?? "?"}`, validator: key.publicKey.address, amount }
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(o.json, r, (r) => `validator.stake ${r.tx} in block ${r.block}: ${r.amount} on its way to ${r.validator}'s beacon account`)
      ),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("Stake: send an amount from your transfer-shard account to your own beacon account (a validator's stake is its beacon balance)"))

const register = Command.make(
  "register",
  {
    blsSeed: Options.text("bls-seed").pipe(Options.optional, Options.withDescription("Derive the BLS key from this secret text")),
    devIndex: Options.integer("dev-index").pipe(
      Options.optional,
      Options.withDescription("Use devnet validator I's deterministic keys (BLS, and the account unless --key)")
    ),
    endpoint: Options.text("endpoint").pipe(Options.withDescription(`Where the validator serves, e.g. ws://host:port (1 to ${ENDPOINT_CHARS_MAX} characters)`)),
    key: keyOption("The validator account"),
    fee: feeOption,
    rpcUrl,
    json
  },
  (o) =>
    Effect.gen(function* () {
      if (Option.isSome(o.blsSeed) === Option.isSome(o.devIndex)) {
        return yield* Effect.fail(new BadInput("give exactly one of --bls-seed TEXT or --dev-index I"))
      }
      const chars = [...o.endpoint].length
      if (chars < 1 || chars > ENDPOINT_CHARS_MAX) {
        return yield* Effect.fail(new BadInput(`--endpoint must be 1 to ${ENDPOINT_CHARS_MAX} characters, got ${chars}`))
      }
      const devIndex = Option.getOrUndefined(o.devIndex)
      if (devIndex !== undefined && (devIndex < 0 || devIndex > DEV_INDEX_MAX)) {
        return yield* Effect.fail(new BadInput(`--dev-index must be 0 to ${DEV_INDEX_MAX}, got ${devIndex}`))
      }
      const dev = devIndex === undefined ? undefined : devValidatorKeys(devIndex)
      const bls = dev?.bls ?? blsKeyFromSeed(utf8(Option.getOrThrow(o.blsSeed)))
      const given = yield* loadOptionalKey(o.key)
      const key = Option.isSome(given)
        ? given.value
        : dev !== undefined
          ? dev.secp
          : yield* Effect.fail(new BadInput("no key: give --key-file PATH, set TOPAI_KEY or give --key HEX (unless --dev-index gives the account)"))
      const fee = yield* parseFee(o.fee)
      const payload = {
        kind: "validator.register" as const,
        blsPublicKey: bytesToHex(bls.publicKey),
        proofOfPossession: bytesToHex(proofOfPossession(bls.secretKey)),
        endpoint: o.endpoint
      }
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const tx = yield* submitSigned(client, key, payload, fee)
          return { tx: tx.hash, block: `${tx.shard}/${tx.blockHeight ?? "?"}`, validator: key.publicKey.address, blsPublicKey: payload.blsPublicKey, endpoint: o.endpoint }
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(o.json, r, (r) => `validator.register ${r.tx} in block ${r.block}: ${r.validator} registered with BLS key ${r.blsPublicKey} at ${r.endpoint}`)
      ),
      reportErrors(o.json)
    )
).pipe(
  Command.withDescription(
    "Join (or update) the beacon's validator registry: a BLS key with its proof of possession and an endpoint; needs a beacon balance (validator stake first)"
  )
)

const unbond = Command.make("unbond", { key: keyOption("The validator account"), fee: feeOption, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const key = yield* loadKey(o.key)
    const fee = yield* parseFee(o.fee)
    return yield* withNode(o.rpcUrl, (client) =>
      Effect.gen(function* () {
        const tx = yield* submitSigned(client, key, { kind: "validator.unbond" }, fee)
        const status = yield* client.node.status()
        const epoch = status.shards.find((s) => s.shard === 0)?.epoch ?? 0
        return { tx: tx.hash, block: `${tx.shard}/${tx.blockHeight ?? "?"}`, validator: key.publicKey.address, leavesAtEndOfEpoch: epoch }
      })
    )
  }).pipe(
    Effect.flatMap((r) =>
      printResult(
        o.json,
        r,
        (r) =>
          `validator.unbond ${r.tx} in block ${r.block}: ${r.validator} leaves at the end of epoch ${r.leavesAtEndOfEpoch}; its beacon balance then goes back to its transfer-shard account`
      )
    ),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("Leave the validator registry at the end of the open epoch; the beacon balance then returns to your transfer-shard account"))

export const validatorCommand = Command.make("validator").pipe(
  Command.withDescription("The beacon's validator registry: stake, register, unbond"),
  Command.withSubcommands([stake, register, unbond])
)

export const validatorsText = (v: ValidatorsView): string =>
  [
    `validator registry (open epoch ${v.epoch})`,
    v.registry.length === 0
      ? "  (empty: a chain without validators)"
      : table(
          ["  ADDRESS", "STAKE", "BEACON BALANCE", "ENDPOINT", "STATUS"],
          v.registry.map((r) => [
            `  ${r.address}`,
            String(r.stake),
            String(r.beaconBalance),
            r.endpoint ?? "-",
            r.leaving ? "leaving" : r.genesisStake > 0n ? "genesis" : "registered"
          ])
        ),
    `committees of epoch ${v.committeesEpoch}`,
    v.committees.length === 0
      ? "  (none elected for this epoch)"
      : v.committees
          .map((c) => fields([[`shard ${c.shard}`, c.members.map((m) => `${m.address} (${m.stake})`).join("\n" + " ".repeat(12))]]))
          .join("\n")
  ].join("\n")

export const validatorsCommand = Command.make(
  "validators",
  {
    epoch: Options.integer("epoch").pipe(Options.optional, Options.withDescription("The epoch whose committees to show (default: the open one)")),
    rpcUrl,
    json
  },
  (o) =>
    withNode(o.rpcUrl, (client) => client.validators.list({ ...(Option.isSome(o.epoch) ? { epoch: o.epoch.value } : {}) })).pipe(
      Effect.flatMap((v) => printResult(o.json, v, validatorsText)),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("List the beacon's validator registry (stake, endpoint, leaving) and the committees elected for an epoch"))
