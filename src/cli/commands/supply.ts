/**
 * `topai supply`: where every unit of the genesis supply is — the mining
 * reserve and what it minted, the foundation, stakes, escrow, what was
 * burned, what circulates — and whether the system accounts on chain agree
 * with the economy's ledgers.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import type { SupplyView } from "../../client/index.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { fields, table } from "../table.js"
import { withNode } from "./aiSupport.js"

export const supplyText = (s: SupplyView): string =>
  [
    `supply at epoch ${s.epoch} (${s.lastClosed === null ? "no epoch closed yet" : `last closed ${s.lastClosed}`})`,
    fields([
      ["total supply", String(s.totalSupply)],
      ["reserve", `${s.reserveRemaining}  (mining reserve not minted yet)`],
      ["minted", String(s.minted)],
      ["burned", `${s.burned}  (slashes ${s.burnedBySlashes}, protocol fees ${s.protocolFeesBurned}, transaction fees ${s.chainFeesBurned})`],
      ["circulating", String(s.circulating)],
      ["staked", String(s.stakedBonded)],
      ["unbonding", String(s.unbonding)],
      ["foundation", `${s.foundationRemaining}  (paid out ${s.foundationPaid})`],
      ["escrow", `${s.onChain.escrow}  (on chain)`]
    ]),
    "system accounts on chain",
    fields([
      ["reserve", String(s.onChain.reserve)],
      ["foundation", String(s.onChain.foundation)],
      ["stake pool", String(s.onChain.stakePool)],
      ["escrow", String(s.onChain.escrow)],
      ["treasury", String(s.onChain.treasury)],
      ["burn address", String(s.onChain.burnAddress)]
    ]),
    "owed by the ledgers, paid on chain and in flight to another shard, per paying account",
    table(
      ["  ACCOUNT", "OWED", "PAID", "IN FLIGHT"],
      s.sources.map((x) => [`  ${x.source}`, String(x.owed), String(x.paid), String(x.inFlight)])
    ),
    `balanced: ${s.balanced ? "yes" : "no"}`
  ].join("\n")

export const supplyCommand = Command.make("supply", { rpcUrl, json }, (o) =>
  withNode(o.rpcUrl, (client) => client.supply()).pipe(
    Effect.flatMap((s) => printResult(o.json, s, supplyText)),
    reportErrors(o.json)
  )
).pipe(
  Command.withDescription(
    "Show the supply: reserve, minted, burned, circulating, staked, unbonding, foundation, escrow, the system accounts on chain, and whether they balance"
  )
)
