/** Read-only commands that ask a running node: status, balance, block. */
import { Args, Command } from "@effect/cli"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { Effect, Schema } from "effect"
import { makeClient } from "../../client/index.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput } from "../parse.js"

/** How long a CLI call waits for the node before giving up. */
export const CALL_TIMEOUT = "30 seconds"

const RPC_URL = /^(wss?|https?):\/\/[^/\s]+/

/** The node could not be reached, or the connection broke: said in words, with the socket's reason. */
export class NodeUnreachable extends Schema.TaggedError<NodeUnreachable>()("NodeUnreachable", {
  url: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `cannot reach the node at ${this.url} (${this.detail}); is it running? (topai node start)`
  }
}

/** The innermost readable reason of a transport failure (ECONNREFUSED, a 404 on upgrade, a bad URL, ...). */
const reasonOf = (error: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const message = (current as { readonly message?: unknown }).message
    if (typeof message === "string" && message !== "" && !message.startsWith("An error has occurred")) messages.push(message)
    const next = current as { readonly cause?: unknown; readonly error?: unknown }
    current = next.cause ?? next.error
  }
  return messages[messages.length - 1] ?? String(error)
}

const isRpcClientError = (e: unknown): e is RpcClientError => e instanceof RpcClientError

const withClient = <A, E>(
  url: string,
  f: (client: Effect.Effect.Success<ReturnType<typeof makeClient>>) => Effect.Effect<A, E>
): Effect.Effect<A, E | NodeUnreachable | BadInput | Error> =>
  RPC_URL.test(url)
    ? makeClient(url).pipe(
        Effect.flatMap(f),
        Effect.mapError((e) => (isRpcClientError(e) ? new NodeUnreachable({ url, detail: reasonOf(e.cause) }) : e)),
        Effect.timeoutFail({ duration: CALL_TIMEOUT, onTimeout: () => new Error(`no answer from ${url} within ${CALL_TIMEOUT}`) }),
        Effect.scoped
      )
    : Effect.fail(new BadInput(`--rpc must be ws://HOST:PORT/ws or http://HOST:PORT/rpc, got "${url}"`))

export const statusCommand = Command.make("status", { rpcUrl, json }, ({ rpcUrl, json }) =>
  withClient(rpcUrl, (c) => c.node.status()).pipe(
    Effect.flatMap((s) =>
      printResult(json, s, (s) =>
        [
          `chain ${s.chainId}  topai ${s.version}  events ${s.eventsPosition}`,
          ...s.shards.map(
            (x) =>
              `shard ${x.shard} (${x.kind}): height ${x.height}` +
              (x.epoch === undefined ? "" : `  epoch ${x.epoch}`) +
              `  head ${x.lastBlockHash}  pending ${x.pendingTransactions}`
          )
        ].join("\n")
      )
    ),
    reportErrors(json)
  )
).pipe(Command.withDescription("Show the node's chain id, each shard's height and the beacon's epoch"))

const address = Args.text({ name: "ADDRESS" }).pipe(Args.withDescription("A 0x-prefixed 20-byte address"))

export const balanceCommand = Command.make("balance", { address, rpcUrl, json }, ({ address, rpcUrl, json }) =>
  withClient(rpcUrl, (c) => c.account.get({ address })).pipe(
    Effect.flatMap((a) =>
      printResult(json, a, (a) => `${a.address}  shard ${a.shard}  balance ${a.balance}  nonce ${a.nonce}`)
    ),
    reportErrors(json)
  )
).pipe(Command.withDescription("Show an account's balance, nonce and shard"))

const shard = Args.integer({ name: "SHARD" }).pipe(Args.withDescription("Shard id (0 is the beacon)"))
const height = Args.integer({ name: "HEIGHT" }).pipe(Args.withDescription("Block height (1 is the first block)"))

export const blockCommand = Command.make("block", { shard, height, rpcUrl, json }, ({ shard, height, rpcUrl, json }) =>
  withClient(rpcUrl, (c) => c.block.get({ shard, height })).pipe(
    Effect.flatMap((b) =>
      printResult(json, b, (b) =>
        [
          `block ${b.shard}/${b.height}  ${b.hash}`,
          `  parent      ${b.parentHash}`,
          `  proposer    ${b.proposer}`,
          `  timestamp   ${new Date(b.timestamp).toISOString()}`,
          `  txRoot      ${b.txRoot}`,
          `  eventsRoot  ${b.eventsRoot}`,
          `  ${b.transactions.length} transactions, ${b.receipts.length} cross-shard receipts`,
          ...b.transactions.map((t) => `    ${t}`)
        ].join("\n")
      )
    ),
    reportErrors(json)
  )
).pipe(Command.withDescription("Show one block of one shard"))

export { withClient }
