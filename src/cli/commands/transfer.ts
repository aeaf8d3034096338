/** `topai transfer`: sign a transfer locally, submit it, wait for its block. */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { bytesToHex } from "../../../domain/chain/hex.js"
import { TransactionBody, signTransaction } from "../../../domain/chain/transaction.js"
import { DEFAULT_FEE } from "../../../domain/chain/genesis.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { parseAddress, parseAmount } from "../parse.js"
import { keyOption, loadKey } from "../keySource.js"
import { withClient } from "./query.js"

const key = keyOption("The sender")
const to = Options.text("to").pipe(Options.withDescription("The recipient's address"))
const amount = Options.text("amount").pipe(Options.withDescription("Amount in base units"))
const fee = Options.text("fee").pipe(
  Options.withDefault(String(DEFAULT_FEE)),
  Options.withDescription(`Fee in base units, burned (default ${DEFAULT_FEE})`)
)
const nonce = Options.text("nonce").pipe(
  Options.optional,
  Options.withDescription("Nonce to use (default: the account's next pending nonce)")
)
const noWait = Options.boolean("no-wait").pipe(Options.withDescription("Return once admitted, without waiting for the block"))

export const transferCommand = Command.make(
  "transfer",
  { key, to, amount, fee, nonce, noWait, rpcUrl, json },
  (o) =>
    Effect.gen(function* () {
      const sender = yield* loadKey(o.key)
      const recipient = yield* parseAddress(o.to, "--to")
      const value = yield* parseAmount(o.amount, "--amount", { positive: true })
      const feeValue = yield* parseAmount(o.fee, "--fee")
      const explicitNonce = Option.isSome(o.nonce) ? yield* parseAmount(o.nonce.value, "--nonce") : undefined
      return yield* withClient(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const status = yield* client.node.status()
          const account = yield* client.account.get({ address: sender.publicKey.address })
          const body = new TransactionBody({
            chainId: status.chainId,
            nonce: explicitNonce ?? account.pendingNonce,
            fee: feeValue,
            payload: { kind: "transfer", to: recipient, amount: value }
          })
          const tx = signTransaction(body, sender)
          return yield* client.tx.submit({ raw: bytesToHex(tx.encoded), wait: !o.noWait })
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(o.json, r, (r) =>
          r.status === "included"
            ? `${r.hash} included in block ${r.shard}/${r.blockHeight}`
            : r.status === "rejected"
              ? `${r.hash} rejected at execution in block ${r.shard}/${r.blockHeight}`
              : `${r.hash} admitted on shard ${r.shard}, pending`
        )
      ),
      reportErrors(o.json)
    )
).pipe(Command.withDescription("Send base units to an address; waits until the transfer is in a block"))
