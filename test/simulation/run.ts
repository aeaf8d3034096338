/**
 * `npm run sim -- --seeds 1..1000` runs one simulated scenario per seed and
 * checks every invariant (see `checker.ts`); `--seed N` runs one,
 * `--verbose` prints a line per run, `--quorum 1/2` runs the nodes on a
 * deliberately broken quorum and `--too-many-twins` gives Byzantine twins
 * 3 seats of 7 (`TOO_MANY_TWINS`), `--tc-unchecked` has nodes vote on any
 * TC-justified block (`TC_UNCHECKED`; the checker must catch all three),
 * `--stale-twins` runs its adversary (twins proposing on stale QCs) against
 * the real rule (no violation allowed), `--handover-unchecked` has nodes
 * apply the old committee's commits after their epoch's handover
 * (`HANDOVER_UNCHECKED`) and `--handover-certified` switch epochs on a
 * certified, not committed, handover (`HANDOVER_CERTIFIED`; both force
 * epochs on, and the checker must catch them on some seeds), `--epochs` and
 * `--no-epochs` force reconfiguration on or off (else about half the seeds
 * have it), `--trace N` sets
 * how many events a failure shows. Exits non-zero on any violation, after
 * printing the seed, its scenario and the trace that led there.
 */
import { describeScenario, HANDOVER_CERTIFIED, HANDOVER_UNCHECKED, scenarioOf, type ScenarioOverrides, STALE_TWINS, TC_UNCHECKED, TOO_MANY_TWINS } from "./scenario.js"
import { type RunResult, runScenario } from "./simulator.js"

interface Args {
  readonly from: number
  readonly to: number
  readonly verbose: boolean
  readonly traceDepth: number
  readonly overrides: ScenarioOverrides
  /** The variant flags, to print beside a failing seed. */
  readonly flags: string
}

const usage =
  "usage: npm run sim -- [--seeds A..B | --seed N] [--verbose] [--trace N] [--quorum NUM/DEN] [--too-many-twins] [--tc-unchecked] [--stale-twins] [--handover-unchecked] [--handover-certified] [--epochs | --no-epochs]"

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let from = 1
  let to = 100
  let verbose = false
  let traceDepth = 80
  let overrides: ScenarioOverrides = {}
  let flags = ""
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value. ${usage}`)
      return v
    }
    if (arg === "--seeds") {
      const m = /^(\d+)\.\.(\d+)$/.exec(value())
      if (m === null) throw new Error(`--seeds wants A..B. ${usage}`)
      from = Number(m[1])
      to = Number(m[2])
    } else if (arg === "--seed") {
      from = to = Number(value())
    } else if (arg === "--too-many-twins") {
      overrides = { ...overrides, ...TOO_MANY_TWINS }
      flags += " --too-many-twins"
    } else if (arg === "--stale-twins") {
      overrides = { ...overrides, ...STALE_TWINS }
      flags += " --stale-twins"
    } else if (arg === "--tc-unchecked") {
      overrides = { ...overrides, ...TC_UNCHECKED }
      flags += " --tc-unchecked"
    } else if (arg === "--handover-unchecked") {
      overrides = { ...overrides, ...HANDOVER_UNCHECKED }
      flags += " --handover-unchecked"
    } else if (arg === "--handover-certified") {
      overrides = { ...overrides, ...HANDOVER_CERTIFIED }
      flags += " --handover-certified"
    } else if (arg === "--epochs" || arg === "--no-epochs") {
      overrides = { ...overrides, epochs: arg === "--epochs" }
      flags += ` ${arg}`
    } else if (arg === "--verbose") {
      verbose = true
    } else if (arg === "--trace") {
      traceDepth = Number(value())
    } else if (arg === "--quorum") {
      const m = /^(\d+)\/(\d+)$/.exec(value())
      if (m === null) throw new Error(`--quorum wants NUM/DEN. ${usage}`)
      overrides = { ...overrides, quorum: { numerator: BigInt(m[1]!), denominator: BigInt(m[2]!) } }
      flags += ` --quorum ${m[1]}/${m[2]}`
    } else {
      throw new Error(`unknown argument ${arg}. ${usage}`)
    }
  }
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from > to) throw new Error(`bad seed range. ${usage}`)
  return { from, to, verbose, traceDepth, overrides, flags }
}

const summary = (r: RunResult, ms: number): string =>
  `seed ${r.seed}: ${r.violation === undefined ? "ok" : `VIOLATION ${r.violation.kind}`} history ${r.historyHash}` +
  ` blocks ${r.blocks} txs ${r.txs} commits ${r.commits} handovers ${r.handovers} catch-ups ${r.catchUps}` +
  ` messages ${r.messages} events ${r.events}` +
  ` simulated ${(r.simulatedMs / 1000).toFixed(1)}s wall ${ms.toFixed(0)}ms`

const main = (): number => {
  const args = parseArgs(process.argv.slice(2))
  const started = performance.now()
  let runs = 0
  let violations = 0
  let commits = 0
  let blocks = 0
  let handovers = 0
  let epochRuns = 0
  let simulatedMs = 0
  let lastProgress = started
  const failed: Array<number> = []
  for (let seed = args.from; seed <= args.to; seed++) {
    const scenario = scenarioOf(seed, args.overrides)
    const t0 = performance.now()
    const result = runScenario(scenario, { traceDepth: args.traceDepth })
    const ms = performance.now() - t0
    runs++
    commits += result.commits
    blocks += result.blocks
    handovers += result.handovers
    if (scenario.epochBlocks !== undefined) epochRuns++
    simulatedMs += result.simulatedMs
    if (args.verbose) console.log(summary(result, ms))
    if (result.violation !== undefined) {
      violations++
      failed.push(seed)
      console.log(`\n=== seed ${seed} FAILED: ${result.violation.kind}`)
      console.log(`scenario: ${describeScenario(scenario)}`)
      console.log(`violation: ${result.violation.detail}`)
      console.log(`last ${result.trace.length} events:`)
      for (const line of result.trace) console.log(`  ${line}`)
      console.log(`reproduce: npm run sim -- --seed ${seed}${args.flags}\n`)
    } else if (!args.verbose && performance.now() - lastProgress > 2_000) {
      lastProgress = performance.now()
      const elapsed = (lastProgress - started) / 1000
      console.log(`… ${runs}/${args.to - args.from + 1} runs, ${violations} violations, ${(runs / elapsed).toFixed(1)} scenarios/s`)
    }
  }
  const elapsed = (performance.now() - started) / 1000
  console.log(
    `runs ${runs}, violations ${violations}${failed.length > 0 ? ` (seeds ${failed.slice(0, 20).join(", ")}${failed.length > 20 ? ", …" : ""})` : ""}, ` +
      `${(runs / elapsed).toFixed(1)} scenarios/s, wall ${elapsed.toFixed(1)}s, ` +
      `committed blocks ${blocks}, honest commits ${commits}, handovers ${handovers} (in ${epochRuns} runs with epochs), simulated ${(simulatedMs / 1000).toFixed(0)}s`
  )
  return violations === 0 ? 0 : 1
}

process.exitCode = main()
