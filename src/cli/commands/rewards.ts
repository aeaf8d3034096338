/**
 * `topai rewards epoch N`: a closed epoch's whole reward ledger — who was
 * paid what, from which account and on which basis, the slashes, the stake
 * released, the fees — then the epoch's totals.
 * `topai rewards show ADDR`: an address's statement over every closed epoch.
 */
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import type { RewardLedgerView, StatementView } from "../../client/index.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput, parseAddress } from "../parse.js"
import { fields, percentOf, table } from "../table.js"
import { withNode } from "./aiSupport.js"

const EPOCH = /^[0-9]+$/

export const parseEpoch = (text: string): Effect.Effect<number, BadInput> => {
  const t = text.trim()
  const n = EPOCH.test(t) ? Number(t) : Number.NaN
  return Number.isSafeInteger(n) ? Effect.succeed(n) : Effect.fail(new BadInput(`EPOCH must be a whole number ≥ 0, got "${text}"`))
}

type Ev = RewardLedgerView["events"][number]
type Of<T extends Ev["_tag"]> = Extract<Ev, { _tag: T }>

const iso = (ms: number) => new Date(ms).toISOString()

const basisOf = (c: Of<"RewardCredited">): string => {
  if (c.kind === "LaunchReward") return `model ${c.modelId ?? "?"} verified`
  const what = c.kind === "OnlineMining" ? "online unit-ms" : "task unit-ms"
  return `${c.role === null ? "" : `${c.role}: `}${what} ${c.weight} of ${c.totalWeight} (${percentOf(c.weight, c.totalWeight)})`
}

export const ledgerText = (l: RewardLedgerView): string => {
  const credits = l.events.filter((e): e is Of<"RewardCredited"> => e._tag === "RewardCredited")
  const slashes = l.events.filter((e): e is Of<"Slashed"> => e._tag === "Slashed")
  const releases = l.events.filter((e): e is Of<"StakeReleased"> => e._tag === "StakeReleased")
  const fees = l.events.filter((e): e is Of<"FeesRecorded"> => e._tag === "FeesRecorded")
  const h = l.events.find((e): e is Of<"EpochClosed"> => e._tag === "EpochClosed")
  const out: Array<string> = []
  out.push(
    h === undefined
      ? `epoch ${l.epoch}  (no EpochClosed header: not closed)`
      : `epoch ${l.epoch}  ${iso(h.startAt)} → ${iso(h.endAt)}  year ${h.year}  ${l.events.length} ledger events`
  )
  out.push("", `rewards (${credits.length})`)
  out.push(
    credits.length === 0
      ? "  none"
      : table(
          ["KIND", "SOURCE", "TO", "AMOUNT", "BASIS"],
          credits.map((c) => [c.kind, c.source, c.to, String(c.amount), basisOf(c)])
        )
  )
  out.push("", `slashes (${slashes.length})`)
  out.push(
    slashes.length === 0
      ? "  none"
      : table(
          ["WORKER", "REASON", "STAKE BEFORE", "AMOUNT", "TO USER", "TO REPORTER", "BURNED", "WHY"],
          slashes.map((s) => [s.worker, s.reason, String(s.stakeBefore), String(s.amount), String(s.toUser), String(s.toReporter), String(s.burned), s.detail])
        )
  )
  out.push("", `stake released (${releases.length})`)
  out.push(releases.length === 0 ? "  none" : table(["WORKER", "OWNER", "AMOUNT"], releases.map((r) => [r.worker, r.owner, String(r.amount)])))
  out.push("", `fees of the epoch's settled tasks (${fees.length} addresses; the escrow paid them as each task settled)`)
  out.push(
    fees.length === 0
      ? "  none"
      : table(
          ["ADDRESS", "SERVICE FEES", "COMPUTE FEES PAID", "COMPUTE FEES EARNED", "PROTOCOL FEES", "TASKS"],
          fees.map((f) => [f.address, String(f.serviceFees), String(f.computeFeesPaid), String(f.computeFeesEarned), String(f.protocolFees), String(f.tasks)])
        )
  )
  if (h !== undefined) {
    out.push("", "totals")
    out.push(
      fields([
        ["issuance", `${h.issuance}  (reserve ${h.reserveBefore} at the epoch's start, ${h.reserveAtYearStart} at the year's)`],
        ["shard shares", `ai ${h.shardShares.ai} / beacon ${h.shardShares.beacon} / transfer ${h.shardShares.transfer} ppm`],
        ["AI pool", String(h.aiPool)],
        ["beacon portion", `${h.beaconPortion}  (stays in the reserve)`],
        ["transfer portion", `${h.transferPortion}  (stays in the reserve)`],
        ["launch rewards", String(h.launchRewards)],
        ["online mining", `${h.onlineMiningPaid} paid of ${h.onlineMining}`],
        ["task mining", `${h.taskMiningPaid} paid of ${h.taskMining}`],
        ["minted", `${h.minted}  (retained in the reserve: ${h.conservation.retained})`],
        ["foundation paid", String(h.foundationPaid)],
        ["slashed", String(h.slashed)],
        ["burned", String(h.burned)],
        ["released", String(h.released)],
        ["reserve after", String(h.reserveAfter)],
        ["total minted", String(h.totalMinted)],
        ["total supply", String(h.totalSupply)]
      ])
    )
  }
  return out.join("\n")
}

const n = (x: bigint) => String(x)

export const statementText = (s: StatementView): string => {
  const t = s.total
  const active = s.epochs.filter((l) => Object.entries(l).some(([k, v]) => k !== "epoch" && typeof v === "bigint" && v !== 0n))
  const header = ["EPOCH", "TASK MINING", "LAUNCH", "SERVICE FEES", "COMPUTE PAID", "PROVIDER NET", "ONLINE", "COMPUTE EARNED", "SUBSIDY", "SLASHED", "COMPENSATION", "NET"]
  const row = (label: string, l: StatementView["total"]) => [
    label,
    n(l.taskMining),
    n(l.launchReward),
    n(l.serviceFees),
    n(l.computeFeesPaid),
    n(l.providerNet),
    n(l.onlineMining),
    n(l.computeFeesEarned),
    n(l.subsidy),
    n(l.slashed),
    n(l.slashCompensation),
    n(l.net)
  ]
  const hidden = s.epochs.length - active.length
  return [
    `statement of ${s.address} over ${s.closedEpochs} closed epoch(s)`,
    "",
    active.length === 0 ? "  nothing in any closed epoch" : table(header, [...active.map((l) => row(String(l.epoch), l)), row("total", t)]),
    ...(hidden > 0 && active.length > 0 ? [`  (${hidden} epoch(s) with nothing for this address not shown)`] : []),
    "",
    `as a provider: task mining ${t.taskMining} + launch reward ${t.launchReward} + service fees ${t.serviceFees} − computing fees ${t.computeFeesPaid} = net ${t.providerNet}`,
    `as a worker:   online mining ${t.onlineMining} + task mining counted above + computing fees earned ${t.computeFeesEarned} + subsidy ${t.subsidy} − slashed ${t.slashed}`,
    `overall:       every credit − every debit = ${t.net}` + (t.slashCompensation === 0n ? "" : ` (slash compensation ${t.slashCompensation} included)`)
  ].join("\n")
}

const epochArg = Args.text({ name: "EPOCH" }).pipe(Args.withDescription("A closed epoch's number (0 is the first)"))

const epoch = Command.make("epoch", { epoch: epochArg, rpcUrl, json }, (o) =>
  parseEpoch(o.epoch).pipe(
    Effect.flatMap((e) =>
      withNode(o.rpcUrl, (client) =>
        client.rewards.epoch({ epoch: e }).pipe(
          Effect.catchTag("NotFound", (x) => Effect.fail(new BadInput(`epoch ${e} is not closed yet: ${x.message}`)))
        )
      )
    ),
    Effect.flatMap((l) => printResult(o.json, l, ledgerText)),
    reportErrors(o.json)
  )
).pipe(
  Command.withDescription(
    "Show a closed epoch's whole reward ledger: every reward (kind, source account, recipient, amount, basis), slash, stake release and fee line, then the epoch's totals"
  )
)

const addressArg = Args.text({ name: "ADDRESS" }).pipe(Args.withDescription("The address (provider, worker, developer, ...)"))

const show = Command.make("show", { address: addressArg, rpcUrl, json }, (o) =>
  parseAddress(o.address, "ADDRESS").pipe(
    Effect.flatMap((address) => withNode(o.rpcUrl, (client) => client.rewards.show({ address }))),
    Effect.flatMap((s) => printResult(o.json, s, statementText)),
    reportErrors(o.json)
  )
).pipe(
  Command.withDescription(
    "Show an address's statement per closed epoch and in total: task mining + launch reward + service fees − computing fees = provider net, and every other credit and debit"
  )
)

export const rewardsCommand = Command.make("rewards").pipe(
  Command.withDescription("Epoch reward ledgers and statements"),
  Command.withSubcommands([epoch, show])
)
