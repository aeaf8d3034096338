/**
 * `topai escrow deposit|withdraw|show`: what a developer pays in for a model's calls.
 * A deposit is a signed `escrow.deposit` (a cross-shard send to the AI
 * shard's keyless escrow); once the AI ledger credits it, the node's escrow
 * shows it. A withdrawal is a signed `escrow.withdraw` on the AI shard (fee
 * 0): the ledger pays unspent escrow back to the developer by receipt.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { parseAddress, parseAmount } from "../parse.js"
import { loadOptionalKey } from "../keySource.js"
import { APPLY_WAIT, bad, escrowText, feeOption, getModel, keyOption, loadKey, parseFee, parseModelId, pollUntil, submitSigned, withNode } from "./aiSupport.js"

const modelArg = Args.text({ name: "MODEL" }).pipe(Args.withDescription("The model id the deposit pays for"))
const amountArg = Args.text({ name: "AMOUNT" }).pipe(Args.withDescription("Amount in base units"))

const deposit = Command.make(
  "deposit",
  { model: modelArg, amount: amountArg, key: keyOption("The developer"), fee: feeOption, rpcUrl, json },
  (o) =>
    Effect.gen(function* () {
      const id = yield* parseModelId(o.model)
      const amount = yield* parseAmount(o.amount, "AMOUNT", { positive: true })
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      const developer = key.publicKey.address
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          // Money sent to a model that cannot serve would sit in escrow for nothing.
          const m = yield* getModel(client, id)
          if (m.status === "Rejected") return yield* bad(`model ${id} was rejected (${m.reason ?? "no reason given"}): it serves no calls`)
          if (m.deprecated) return yield* bad(`model ${id} is deprecated: it takes no new calls`)
          const before = yield* client.escrow.get({ developer, model: id })
          const tx = yield* submitSigned(client, key, { kind: "escrow.deposit", model: id as Hash32, amount }, fee)
          const escrow = yield* pollUntil(
            client.escrow.get({ developer, model: id }).pipe(
              Effect.map((e) => (e.deposited >= before.deposited + amount ? Option.some(e) : Option.none()))
            ),
            { within: APPLY_WAIT, onTimeout: () => new Error(`escrow.deposit ${tx.hash} is in a block, but the node's escrow does not show it yet`) }
          )
          return { tx: tx.hash, block: `${tx.shard}/${tx.blockHeight ?? "?"}`, escrow }
        })
      )
    }).pipe(
      Effect.flatMap((r) => printResult(o.json, r, (r) => `deposit ${r.tx} included in block ${r.block}\n${escrowText(r.escrow)}`)),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("Pay AMOUNT into escrow for MODEL's calls (signed); waits for the block and shows the escrow"))

const withdraw = Command.make(
  "withdraw",
  {
    model: Options.text("model").pipe(Options.withDescription("The model id whose escrow to draw from")),
    amount: Options.text("amount").pipe(Options.withDescription("Amount in base units")),
    key: keyOption("The developer"),
    rpcUrl,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const id = yield* parseModelId(o.model)
      const amount = yield* parseAmount(o.amount, "--amount", { positive: true })
      const key = yield* loadKey(o.key)
      const developer = key.publicKey.address
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const before = yield* client.escrow.get({ developer, model: id })
          if (before.onLedger !== undefined && before.onLedger < amount) {
            return yield* bad(`${developer} has ${before.onLedger} in escrow for model ${id} on the AI ledger, less than ${amount}`)
          }
          // An AI-shard kind: the developer's AI-shard nonce, fee 0.
          const tx = yield* submitSigned(client, key, { kind: "escrow.withdraw", model: id as Hash32, amount }, 0n)
          const escrow = yield* client.escrow.get({ developer, model: id })
          return { tx: tx.hash, block: `${tx.shard}/${tx.blockHeight ?? "?"}`, escrow }
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(o.json, r, (r) => `withdrawal ${r.tx} included in block ${r.block}; the money comes back by receipt to your transfer shard\n${escrowText(r.escrow)}`)
      ),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("Take AMOUNT of unspent escrow for MODEL back (signed, fee 0): paid to your account by cross-shard receipt"))

const developerOption = Options.text("developer").pipe(Options.optional, Options.withDescription("The developer's address"))
/** Or the developer's key: its address. */
const keyForShow = keyOption("The developer")

const show = Command.make("show", { model: modelArg, developer: developerOption, key: keyForShow, rpcUrl, json }, (o) =>
  Effect.gen(function* () {
    const id = yield* parseModelId(o.model)
    const developer = Option.isSome(o.developer)
      ? yield* parseAddress(o.developer.value, "--developer")
      : yield* loadOptionalKey(o.key).pipe(
          Effect.flatMap(
            Option.match({
              onSome: (key) => Effect.succeed(key.publicKey.address),
              onNone: () => bad("give the developer: --developer ADDRESS, or its key (--key-file PATH, TOPAI_KEY or --key HEX)")
            })
          )
        )
    return yield* withNode(o.rpcUrl, (client) =>
      getModel(client, id).pipe(Effect.zipRight(client.escrow.get({ developer, model: id })))
    )
  }).pipe(
    Effect.flatMap((e) => printResult(o.json, e, escrowText)),
    reportErrors(o.json)
  )
).pipe(Command.withDescription("Show a developer's escrow for a model: deposited, available, reserved, captured"))

export const escrowCommand = Command.make("escrow").pipe(
  Command.withDescription("Pay for AI calls in advance, and see what is left"),
  Command.withSubcommands([deposit, withdraw, show])
)
