/**
 * `topai audit replay`: prove a data dir's history untampered, offline. The
 * genesis comes from the operator (`--genesis FILE`, or `--genesis-hash H`
 * that the data dir's pinned genesis must match), never from the data dir
 * alone: whoever can rewrite the store can rewrite its genesis file too.
 */
import { existsSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Command, Options } from "@effect/cli"
import { Effect, Option, Schema } from "effect"
import { GenesisConfig, genesisConfigHash } from "../../../domain/chain/genesis.js"
import { auditEventLog } from "../../audit/auditEventLog.js"
import type { AuditReport } from "../../audit/auditEventLog.js"
import { json } from "../options.js"
import { CommandFailed, printResult, reportErrors } from "../output.js"
import { DEFAULT_DATA_DIR, EVENTS_FILE, GENESIS_FILE, NodeConfigError } from "./node.js"

const dataDir = Options.directory("data-dir", { exists: "either" }).pipe(
  Options.withDefault(DEFAULT_DATA_DIR),
  Options.withDescription(`The node's data dir (default ${DEFAULT_DATA_DIR})`)
)
const stream = Options.text("stream").pipe(
  Options.optional,
  Options.withDescription("Audit only this stream, e.g. shard-1, or reward-epoch-N: that epoch rebuilt from the whole log and compared field by field")
)

const genesisOption = Options.text("genesis").pipe(
  Options.optional,
  Options.withDescription("The network's genesis file, as the operator holds it; the data dir's pinned genesis must be the same")
)
const genesisHashOption = Options.text("genesis-hash").pipe(
  Options.optional,
  Options.withDescription("Or the network's genesis hash (0x + 64 hex, as an audit prints it); the data dir's pinned genesis must hash to it")
)

const decodeGenesis = Schema.decodeUnknownEither(Schema.parseJson(GenesisConfig))
const HASH = /^0x[0-9a-f]{64}$/

const readGenesis = (file: string, what: string) =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (e) => new NodeConfigError({ detail: `cannot read ${what} ${file}: ${e instanceof Error ? e.message : String(e)}` })
    })
    const decoded = decodeGenesis(text)
    if (decoded._tag === "Left") return yield* new NodeConfigError({ detail: `${what} ${file} is not a genesis: ${decoded.left.message}` })
    return decoded.right
  })

/**
 * The genesis the audit replays from: the operator's (`--genesis FILE`), or
 * the data dir's when it hashes to the operator's `--genesis-hash`. The data
 * dir's pinned genesis must agree with the operator's in both cases.
 */
const operatorGenesis = (dir: string, file: Option.Option<string>, hash: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isSome(file) === Option.isSome(hash)) {
      return yield* new NodeConfigError({
        detail: "give the network's genesis: --genesis FILE or --genesis-hash HASH (exactly one); the auditor does not take it from the data dir it audits"
      })
    }
    const pinnedFile = join(dir, GENESIS_FILE)
    const pinned = existsSync(pinnedFile) ? yield* readGenesis(pinnedFile, "the data dir's genesis") : undefined
    if (Option.isSome(file)) {
      const given = yield* readGenesis(resolve(file.value), "--genesis")
      if (pinned !== undefined && genesisConfigHash(pinned) !== genesisConfigHash(given)) {
        return yield* new NodeConfigError({
          detail: `the data dir's genesis (${pinnedFile}, hash ${genesisConfigHash(pinned)}) is not the given one (hash ${genesisConfigHash(given)}): this is another chain's history`
        })
      }
      return given
    }
    const want = Option.getOrThrow(hash).trim().toLowerCase()
    if (!HASH.test(want)) return yield* new NodeConfigError({ detail: `--genesis-hash must be 0x followed by 64 hex digits, got "${Option.getOrThrow(hash)}"` })
    if (pinned === undefined) return yield* new NodeConfigError({ detail: `${pinnedFile} is missing: give the genesis itself with --genesis FILE` })
    const held = genesisConfigHash(pinned)
    if (held !== want) {
      return yield* new NodeConfigError({ detail: `the data dir's genesis (${pinnedFile}) hashes to ${held}, not ${want}: this is another chain's history` })
    }
    return pinned
  })

const byStatus = (counts: Readonly<Record<string, number>>): string => {
  const entries = Object.entries(counts)
  return entries.length === 0 ? "" : ` (${entries.map(([status, n]) => `${n} ${status}`).join(", ")})`
}

const aiText = (ai: AuditReport["ai"]): ReadonlyArray<string> => [
  `  models: ${ai.models.total}${byStatus(ai.models.byStatus)}${ai.models.deprecated > 0 ? `, ${ai.models.deprecated} deprecated` : ""}`,
  `  tasks: ${ai.tasks.total}${byStatus(ai.tasks.byStatus)}, charged ${ai.tasks.charged}`,
  `  workers: ${ai.workers.total}${byStatus(ai.workers.byStatus)}`,
  `  escrows: ${ai.escrows.total}, deposited ${ai.escrows.deposited}, available ${ai.escrows.available}, reserved ${ai.escrows.reserved}, captured ${ai.escrows.captured}`,
  ...(ai.unprojected.registrations + ai.unprojected.deposits === 0
    ? []
    : [
        `  on chain but not in the AI shard (refused, or applied at the node's next start): ${ai.unprojected.registrations} model registrations, ${ai.unprojected.deposits} escrow deposits`
      ])
]

/** Epochs as ranges: 0–4, 7. */
const epochsText = (epochs: ReadonlyArray<number>): string => {
  const parts: Array<string> = []
  for (let i = 0; i < epochs.length; ) {
    let j = i
    while (j + 1 < epochs.length && epochs[j + 1] === epochs[j]! + 1) j++
    parts.push(i === j ? String(epochs[i]) : `${epochs[i]}–${epochs[j]}`)
    i = j + 1
  }
  return parts.join(", ")
}

/** The economy's lines: what was rebuilt and compared, then each difference (event index, field, stored vs rebuilt). */
export const economyText = (e: NonNullable<AuditReport["economy"]>): ReadonlyArray<string> => [
  `  economy: ${e.epochsEnded} epochs ended in the log, rebuilt; ` +
    (e.epochsChecked.length === 0 ? "no ledger compared" : `ledgers of epochs ${epochsText(e.epochsChecked)} compared field by field`) +
    (e.differenceCount === 0 ? ": identical" : `: ${e.differenceCount} difference(s)`),
  `    rebuilt totals: minted ${e.totals.minted}, foundation paid ${e.totals.foundationPaid}, burned by slashes ${e.totals.burnedBySlashes}, protocol fees burned ${e.totals.protocolFeesBurned}`,
  ...(e.notClosedYet.length === 0 ? [] : [`    ended, not closed yet (closed at the node's next start): epochs ${epochsText(e.notClosedYet)}`]),
  ...e.differences.map((d) => `    ${d.stream} event ${d.index} (${d.event}) ${d.field}: stored ${d.stored}, rebuilt ${d.rebuilt}`),
  ...(e.differenceCount > e.differences.length ? [`    … and ${e.differenceCount - e.differences.length} more`] : [])
]

const reportText = (r: AuditReport): string =>
  [
    r.ok
      ? "audit passed: every hash chain holds, every shard re-executes to its stored events, every model, task, worker and escrow rebuilds and agrees with the chain" +
        (r.economy === undefined ? "" : ", and every epoch ledger rebuilds identically")
      : "AUDIT FAILED",
    ...(r.failure === undefined
      ? []
      : [
          `  stream ${r.failure.stream} revision ${r.failure.revision} (position ${r.failure.position}): ${r.failure.reason}`,
          `  ${r.failure.detail}`
        ]),
    `  ${r.streams} streams, ${r.events} events checked`,
    ...r.shards.map(
      (s) =>
        `  shard ${s.shard}: height ${s.height}, ${s.accounts} accounts, balances ${s.balances}, burned ${s.burned}, sent ${s.sentOut}, received ${s.receivedIn}`
    ),
    ...(r.genesisSupply === undefined ? [] : [`  genesis supply ${r.genesisSupply}`]),
    ...(r.genesisHash === undefined ? [] : [`  genesis hash ${r.genesisHash} (the operator's)`]),
    ...aiText(r.ai),
    ...(r.economy === undefined ? [] : economyText(r.economy)),
    "  heads:",
    ...r.heads.map((h) => `    ${h.stream} @ ${h.revision}  ${h.hash}`)
  ].join("\n")

const replay = Command.make("replay", { dataDir, stream, genesis: genesisOption, genesisHash: genesisHashOption, json }, (o) =>
  Effect.gen(function* () {
    const dir = resolve(o.dataDir)
    const file = join(dir, EVENTS_FILE)
    if (!existsSync(file)) return yield* new NodeConfigError({ detail: `no event store at ${file}` })
    const genesis = yield* operatorGenesis(dir, o.genesis, o.genesisHash)
    return yield* auditEventLog(file, {
      stream: Option.getOrUndefined(o.stream),
      genesis,
      onProgress: o.json ? undefined : (n) => process.stderr.write(`  … ${n} events\n`)
    })
  }).pipe(
    reportErrors(o.json),
    Effect.flatMap((report) =>
      printResult(o.json, report, reportText).pipe(
        Effect.zipRight(report.ok ? Effect.void : Effect.fail(new CommandFailed({ message: "audit failed" })))
      )
    )
  )
).pipe(
  Command.withDescription(
    "Offline: check every hash chain, re-execute every shard from its events, check money is conserved, rebuild every model, task, worker and escrow and check them against the chain, rebuild every epoch's reward ledger from the log and compare it field by field with reward-epoch-N; exits 1 on any difference. The genesis comes from you: --genesis FILE or --genesis-hash HASH, never from the data dir"
  )
)

export const auditCommand = Command.make("audit").pipe(
  Command.withDescription("Audit a node's event history"),
  Command.withSubcommands([replay])
)
