/** Options shared by many commands. */
import { Options } from "@effect/cli"
import { DEFAULT_RPC_URL } from "../api/transport.js"

export const rpcUrl = Options.text("rpc").pipe(
  Options.withDefault(DEFAULT_RPC_URL),
  Options.withDescription(`The node's RPC endpoint: ws://HOST:PORT/ws or http://HOST:PORT/rpc (default ${DEFAULT_RPC_URL})`)
)

export const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON instead of text"))
