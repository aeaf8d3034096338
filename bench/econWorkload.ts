/**
 * A deterministic economy workload driven through the real actors, for
 * `npm run econ-sim` and its tests. A seeded PRNG (no Math.random) and a
 * simulated clock (no Clock): the same options give the same log, the same
 * ledgers, byte for byte.
 *
 *   workers   GpuWorkerActors: registration (class and devices drawn), a
 *             heartbeat every 20 s, silences (MarkOffline after the grace,
 *             back with a heartbeat), stakes bonded and sometimes unbonded
 *   models    ModelActors: upload and one validator's accepting attestation
 *             (ModelVerified: a launch reward)
 *   tasks     TaskActors: request, assignment, results (execution time
 *             drawn), a liar now and then under a 2-of-3 quorum (a slash),
 *             settlement
 *   chain     the beacon's EpochEnded on `shard-0`, the AI ledger's bonds,
 *             unbonds and governance shares on the AI shard's stream, and
 *             the same as the old facts (StakeBonded, UnbondRequested,
 *             ShardSharesProposed) in the sim's own stream `econ-sim-chain`
 *   close     the AI shard's part, simulated: the old facts folded in log
 *             order (bench/econSimFacts.ts), each ended epoch's ledger
 *             appended to the AI shard's stream as its block would emit it;
 *             then the node's loop (the node's and the auditor's fold over
 *             the AI shard's events, src/audit/economyReplay.ts) writes each
 *             ledger through its RewardActor (`reward-epoch-{n}`)
 *
 * The figures printed come from the stored ledgers.
 */
import { Effect, Either, Schema } from "effect"
import type { Scope } from "effect"
import { makeModelActors, modelStream } from "../actors/ModelActor.js"
import { makeRewardActors } from "../actors/RewardActor.js"
import { makeTaskActors, taskStream } from "../actors/TaskActor.js"
import { makeWorkerActors, workerStream } from "../actors/GpuWorkerActor.js"
import { ModelManifest } from "../domain/ai/manifest.js"
import { AttestModel, UploadModel } from "../domain/ai/model/commands.js"
import { AssignTask, RequestTask, SettleTask, SubmitResult } from "../domain/ai/task/commands.js"
import { QuorumPolicy, SinglePolicy } from "../domain/ai/task/events.js"
import * as Verdict from "../domain/ai/verdict.js"
import { DEFAULT_GPU_CLASSES } from "../domain/ai/worker/gpuClass.js"
import { Heartbeat, MarkOffline, RegisterWorker } from "../domain/ai/worker/commands.js"
import { EpochEnded, ShardEvent } from "../domain/chain/events.js"
import { GenesisConfig, genesisSupply } from "../domain/chain/genesis.js"
import { sha256, type Hash32 } from "../domain/chain/hash.js"
import { bytesToHex } from "../domain/chain/hex.js"
import type { Address } from "../domain/chain/keys.js"
import { TOKEN } from "../domain/economics/config.js"
import { RecordEpoch } from "../domain/economics/epochDecider.js"
import { AiShardSharesSet, AiStakeBonded, AiUnbondRequested } from "../domain/ai/ledger/events.js"
import { RewardEvent, rewardEpochStreamId, type EpochLedger } from "../domain/economics/events.js"
import { EventStore } from "../infra/eventstore/EventStore.js"
import { makeLogFold as makeFactFold, SIM_CHAIN_STREAM, SimChainEvent, SimShardSharesProposed, SimStakeBonded, SimUnbondRequested } from "./econSimFacts.js"
import { aiShardStream, decodeLedger, makeLogFold } from "../src/audit/economyReplay.js"
import { aiShardOf } from "../domain/chain/sharding.js"
import { mulberry32U32 } from "../test/support/mulberry32.js"

export interface EconSimOptions {
  readonly epochs: number
  readonly workers: number
  readonly models: number
  readonly seed: number
}

/** Per-epoch totals, from the stored ledger. */
export interface EpochTotals {
  readonly epoch: number
  readonly issuance: bigint
  readonly launch: bigint
  readonly online: bigint
  readonly taskWorkers: bigint
  readonly taskProviders: bigint
  readonly subsidy: bigint
  readonly minted: bigint
  readonly serviceFees: bigint
  readonly computeFees: bigint
  readonly protocolFees: bigint
  readonly slashed: bigint
  readonly burned: bigint
  readonly released: bigint
  readonly reserve: bigint
  readonly tasks: number
}

export const TOTAL_COLUMNS: ReadonlyArray<keyof EpochTotals> = [
  "epoch",
  "issuance",
  "launch",
  "online",
  "taskWorkers",
  "taskProviders",
  "subsidy",
  "minted",
  "serviceFees",
  "computeFees",
  "protocolFees",
  "slashed",
  "burned",
  "released",
  "reserve",
  "tasks"
]

// ---------------------------------------------------------------- randomness

/** The workload's draws, from mulberry32 (32-bit integer arithmetic: the same sequence everywhere). */
export const makePrng = (seed: number) => {
  const u32 = mulberry32U32(seed)
  const int = (min: number, max: number) => min + (u32() % (max - min + 1))
  return {
    u32,
    int,
    /** true with probability per-mille / 1000. */
    chance: (perMille: number) => u32() % 1000 < perMille,
    pick: <A>(xs: ReadonlyArray<A>): A => xs[u32() % xs.length]!
  }
}

const hashOf = (label: string): Hash32 => bytesToHex(sha256(label)) as Hash32
const addressOf = (label: string): Address => bytesToHex(sha256(`econ-sim:${label}`).subarray(0, 20)) as Address
const sig = (label: string): string => bytesToHex(new Uint8Array([...sha256(`r:${label}`), ...sha256(`s:${label}`)]))

// ---------------------------------------------------------------- the run

export const T0 = 1_700_000_000_000
const HEARTBEAT_MS = 20_000
const GRACE_MS = 30_000
const CLASSES = ["CPU", "RTX4090", "A100", "H100"] as const
const VALIDATOR = addressOf("validator")
const GOVERNANCE_SHARES = { ai: 600_000n, beacon: 200_000n, transfer: 200_000n }

const encodeShard = Schema.encodeSync(ShardEvent)
const encodeSimChain = Schema.encodeSync(SimChainEvent)

/** The simulated chain's genesis: the devnet's economics (epochs of 60 × 1 s), timestamp T0. */
export const simGenesis = (): GenesisConfig => new GenesisConfig({ chainId: 7_700n, timestamp: T0 })

export const runEconSim = (o: EconSimOptions): Effect.Effect<ReadonlyArray<EpochTotals>, unknown, EventStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const rnd = makePrng(o.seed)
    const genesis = simGenesis()
    const economics = genesis.economics
    const epochMs = economics.epochBlocks * economics.beaconIntervalMs
    const workersActors = yield* makeWorkerActors({ gpuClasses: DEFAULT_GPU_CLASSES, heartbeatGraceMs: GRACE_MS, stakeMin: 0n })
    const modelActors = yield* makeModelActors({ validators: [VALIDATOR], attestationQuorum: 1, verificationTimeoutMs: 600_000, gpuClasses: DEFAULT_GPU_CLASSES })
    const taskActors = yield* makeTaskActors({ retriesMax: 3 })
    const rewards = yield* makeRewardActors()
    const facts = makeFactFold(economics, genesisSupply(genesis))
    const aiStream = aiShardStream(aiShardOf(genesis.transferShards))
    const node = makeLogFold(economics, aiShardOf(genesis.transferShards))
    let folded = 0
    let chainSeq = 0

    /** A chain event as a shard stores it: type = _tag, data = the rest of its encoding. */
    const chain = (stream: string, event: ShardEvent) => {
      const { _tag, ...data } = encodeShard(event) as { readonly _tag: string }
      return store.append(stream, [{ id: `sim-${chainSeq++}`, type: _tag, data }], "any")
    }
    /** What the simulated chain did that no chain event says any more, in the sim's own stream (econSimFacts.ts). */
    const simChain = (event: SimChainEvent) => {
      const { _tag, ...data } = encodeSimChain(event) as { readonly _tag: string }
      return store.append(SIM_CHAIN_STREAM, [{ id: `sim-${chainSeq++}`, type: _tag, data }], "any")
    }
    const pendingVerifications: Array<{ readonly at: number; readonly run: Effect.Effect<unknown, unknown> }> = []

    /**
     * Fold what was appended since: an ended epoch's ledger goes to the AI shard's stream (the
     * simulated block); the node's fold of that stream writes it through the epoch's RewardActor.
     */
    const follow = Effect.gen(function* () {
      for (;;) {
        const events = yield* store.readAll({ after: folded })
        if (events.length === 0) return
        for (const e of events) {
          folded = e.position
          for (const c of facts.apply(e)) for (const r of c.ledger) yield* chain(aiStream, r)
          for (const c of node.apply(e).closed) {
            const actor = yield* rewards.get(rewardEpochStreamId(c.epoch))
            yield* actor.ask(new RecordEpoch({ epoch: c.epoch, ledger: c.ledger }))
            yield* rewards.release(rewardEpochStreamId(c.epoch))
          }
        }
      }
    })

    // ---- workers
    interface SimWorker {
      readonly id: Address
      readonly owner: Address
      readonly liar: boolean
      silentUntil: number
      offline: boolean
      lastBeat: number
      bonded: bigint
    }
    const workers: Array<SimWorker> = []
    for (let i = 0; i < o.workers; i++) {
      const id = addressOf(`worker-${i}`)
      const owner = addressOf(`owner-${i % Math.max(1, Math.ceil(o.workers / 2))}`)
      const gpuClass = rnd.pick(CLASSES)
      const devices = rnd.int(1, 8)
      const at = T0 + rnd.int(0, epochMs / 2)
      const actor = yield* workersActors.get(workerStream(id))
      yield* actor.ask(new RegisterWorker({ workerId: id, owner, gpuClass, devices, stake: 0n, endpoint: `sim://${i}`, at }))
      const bonded = BigInt(rnd.int(1, 10)) * 1_000n * TOKEN
      yield* simChain(new SimStakeBonded({ txHash: hashOf(`stake-${i}`), owner, worker: id, amount: bonded }))
      // The AI shard's side of it: the bond receipt credited (its economy folds the stakes the ledger's slashes and releases need).
      yield* chain(aiStream, new AiStakeBonded({ receiptId: hashOf(`stake-${i}`), owner, worker: id, amount: bonded }))
      workers.push({ id, owner, liar: rnd.chance(150), silentUntil: 0, offline: false, lastBeat: at, bonded })
    }

    // ---- models
    const models: Array<{ readonly id: Hash32; readonly provider: Address; readonly price: bigint }> = []
    for (let m = 0; m < o.models; m++) {
      const id = hashOf(`model-${m}`)
      const provider = addressOf(`provider-${m % 3}`)
      const price = BigInt(rnd.int(5, 200)) * (TOKEN / 100n)
      const manifest = Schema.decodeUnknownSync(ModelManifest)({
        name: `model-${m}`,
        version: "1",
        pricePerCall: String(price),
        minGpuClass: "CPU",
        license: "MIT",
        description: "econ-sim"
      })
      const weights = hashOf(`weights-${m}`)
      const at = T0 + rnd.int(0, epochMs * Math.max(1, o.epochs - 1))
      const actor = yield* modelActors.get(modelStream(id))
      yield* actor.ask(new UploadModel({ modelId: id, provider, manifest, weightsHash: weights, sizeBytes: 4096, at: T0 }))
      models.push({ id, provider, price })
      // Verified at a drawn time: launches spread over the epochs.
      pendingVerifications.push({ at, run: actor.ask(new AttestModel({ validator: VALIDATOR, verdict: accepted(weights, `fp-${m}`), at })) })
    }

    const developers = [0, 1, 2, 3].map((d) => addressOf(`developer-${d}`))
    let taskSeq = 0

    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const start = T0 + epoch * epochMs
      const end = start + epochMs
      // Actions of the epoch in time order: heartbeats, silences, tasks, verifications.
      const actions: Array<{ readonly at: number; readonly seq: number; readonly run: Effect.Effect<unknown, unknown> }> = []
      let seq = 0
      const at = (t: number, run: Effect.Effect<unknown, unknown>) => actions.push({ at: t, seq: seq++, run })

      for (const v of pendingVerifications.splice(0)) {
        if (v.at < end) at(v.at, v.run)
        else pendingVerifications.push(v)
      }
      for (const w of workers) {
        if (w.silentUntil <= start && rnd.chance(60)) w.silentUntil = start + rnd.int(1, 4) * HEARTBEAT_MS * rnd.int(1, 6)
        for (let t = start + HEARTBEAT_MS; t < end; t += HEARTBEAT_MS) {
          const worker = w
          at(
            t,
            Effect.gen(function* () {
              if (t <= worker.lastBeat) return // registered after this tick
              const actor = yield* workersActors.get(workerStream(worker.id))
              if (t < worker.silentUntil) {
                if (!worker.offline && t - worker.lastBeat > GRACE_MS) {
                  worker.offline = true
                  yield* actor.ask(new MarkOffline({ at: t }))
                }
                return
              }
              worker.offline = false
              worker.lastBeat = t
              yield* actor.ask(new Heartbeat({ at: t }))
            })
          )
        }
      }
      const tasks = models.length === 0 ? 0 : rnd.int(o.workers, 3 * o.workers)
      for (let k = 0; k < tasks; k++) {
        const t = start + rnd.int(1_000, epochMs - 10_000)
        const model = rnd.pick(models)
        const developer = rnd.pick(developers)
        const quorum = workers.length >= 3 && rnd.chance(200)
        const draws = [rnd.u32(), rnd.u32(), rnd.u32(), rnd.u32(), rnd.u32(), rnd.u32()]
        const taskId = hashOf(`task-${taskSeq++}`)
        at(
          t,
          Effect.gen(function* () {
            const online = workers.filter((w) => !w.offline && t >= w.silentUntil)
            if (online.length < (quorum ? 3 : 1)) return
            const picked: Array<SimWorker> = []
            for (let i = 0; picked.length < (quorum ? 3 : 1); i++) {
              const w = online[draws[i % draws.length]! % online.length]!
              if (!picked.includes(w)) picked.push(w)
              else if (i > 20) picked.push(...online.filter((x) => !picked.includes(x)).slice(0, 1))
            }
            const task = yield* taskActors.get(taskStream(taskId))
            const policy = quorum ? QuorumPolicy.make({ k: 2, n: 3 }) : SinglePolicy.make({ sampleRatePerMillion: 0 })
            yield* task.ask(new RequestTask({ taskId, developer, modelId: model.id, price: model.price, inputHash: hashOf(`in-${taskId}`), policy, at: t }))
            yield* task.ask(new AssignTask({ workers: picked.map((w) => w.id), sampleDraw: draws[0]! % 1_000_000, at: t + 5 }))
            const honest = hashOf(`fp-${taskId}`)
            // A liar submits first: the two honest results that follow validate the task and prove it wrong.
            picked.sort((a, b) => Number(b.liar) - Number(a.liar))
            let liars = 0
            for (const [i, w] of picked.entries()) {
              const lie = quorum && w.liar && liars === 0
              if (lie) liars++
              const fingerprint = lie ? hashOf(`lie-${taskId}`) : honest
              const r = yield* task.ask(
                new SubmitResult({ worker: w.id, fingerprint, outputHash: hashOf(`out-${fingerprint}`), signature: sig(`${taskId}-${i}`), at: t + 5 + 50 + (draws[i + 1]! % 2_000) })
              )
              if (r.events.some((e) => e._tag === "TaskValidated")) break // a late third result is refused, as on a node
            }
            yield* task.ask(new SettleTask({ receiptBatchId: hashOf(`batch-${epoch}`), at: t + 3_000 }))
            yield* taskActors.release(taskStream(taskId))
          })
        )
      }
      // Stake moves now and then; governance once, in the middle of the run.
      for (const w of workers) {
        if (w.bonded > 0n && rnd.chance(100)) {
          const amount = w.bonded / 2n
          w.bonded -= amount
          const txHash = hashOf(`unbond-${epoch}-${w.id}`)
          at(
            start + rnd.int(0, epochMs - 1),
            simChain(new SimUnbondRequested({ txHash, owner: w.owner, worker: w.id, amount })).pipe(
              Effect.zipRight(chain(aiStream, new AiUnbondRequested({ txHash, owner: w.owner, worker: w.id, amount })))
            )
          )
        }
      }
      if (epoch === Math.floor(o.epochs / 2)) {
        at(
          start + 1,
          simChain(new SimShardSharesProposed({ txHash: hashOf(`gov-${epoch}`), ...GOVERNANCE_SHARES })).pipe(
            Effect.zipRight(chain(aiStream, new AiShardSharesSet({ txHash: hashOf(`gov-${epoch}`), ...GOVERNANCE_SHARES })))
          )
        )
      }

      actions.sort((a, b) => a.at - b.at || a.seq - b.seq)
      for (const a of actions) yield* a.run
      // The beacon ends the epoch; the node's loop closes it.
      yield* chain("shard-0", new EpochEnded({ epoch, height: (epoch + 1) * economics.epochBlocks, startAt: epoch === 0 ? T0 : start, endAt: end }))
      yield* follow
    }

    const totals: Array<EpochTotals> = []
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const events = yield* store.readStream(rewardEpochStreamId(epoch))
      const ledger: EpochLedger = Either.getOrThrow(decodeLedger(events))
      totals.push(totalsOf(ledger))
    }
    return totals
  })

const accepted = (modelHash: Hash32, label: string) =>
  new Verdict.ModelAccepted({
    modelHash,
    sizeBytes: 4096,
    signature: { inputs: [{ name: "x", type: "float32", dims: [1, 4] }], outputs: [{ name: "y", type: "float32", dims: [1, 4] }] },
    referenceFingerprint: hashOf(label),
    smoke: new Verdict.SmokePassed({ fingerprint: hashOf(label), outputs: [], loadMillis: 3, runMillis: 0.2, totalMillis: 40, peakRssBytes: 50_000_000 })
  })

const sum = (xs: ReadonlyArray<bigint>) => xs.reduce((a, b) => a + b, 0n)

export const totalsOf = (ledger: EpochLedger): EpochTotals => {
  const h = ledger[ledger.length - 1]
  if (h === undefined || h._tag !== "EpochClosed") throw new Error("a ledger ends with its EpochClosed")
  const credits = (pred: (c: Extract<RewardEvent, { _tag: "RewardCredited" }>) => boolean) =>
    sum(ledger.flatMap((e) => (e._tag === "RewardCredited" && pred(e) ? [e.amount] : [])))
  const fees = ledger.flatMap((e) => (e._tag === "FeesRecorded" ? [e] : []))
  return {
    epoch: h.epoch,
    issuance: h.issuance,
    launch: h.launchRewards,
    online: h.onlineMiningPaid,
    taskWorkers: credits((c) => c.kind === "TaskMining" && c.role === "worker"),
    taskProviders: credits((c) => c.kind === "TaskMining" && c.role === "provider"),
    subsidy: h.foundationPaid,
    minted: h.minted,
    serviceFees: sum(fees.map((f) => f.serviceFees)),
    computeFees: sum(fees.map((f) => f.computeFeesPaid)),
    protocolFees: sum(fees.map((f) => f.protocolFees)),
    slashed: h.slashed,
    burned: h.burned,
    released: h.released,
    reserve: h.reserveAfter,
    // Each task is counted once, on its provider's line.
    tasks: fees.reduce((n, f) => n + (f.serviceFees > 0n || f.protocolFees > 0n || f.computeFeesPaid > 0n ? f.tasks : 0), 0)
  }
}

// ---------------------------------------------------------------- output

/** Base units as tokens with 6 decimals (exact: truncated, never rounded up). */
export const tokens = (x: bigint): string => {
  const micro = x / (TOKEN / 1_000_000n)
  const s = micro.toString().padStart(7, "0")
  return `${s.slice(0, -6)}.${s.slice(-6)}`
}

export const totalsTable = (rows: ReadonlyArray<EpochTotals>): string => {
  const header = TOTAL_COLUMNS.map((c) => c.toUpperCase())
  const cells = rows.map((r) => TOTAL_COLUMNS.map((c) => (typeof r[c] === "bigint" ? tokens(r[c] as bigint) : String(r[c]))))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)))
  return [header, ...cells].map((r) => r.map((c, i) => c.padStart(widths[i]!)).join("  ")).join("\n")
}

/** CSV in base units (exact), one row per epoch. */
export const totalsCsv = (rows: ReadonlyArray<EpochTotals>): string =>
  [TOTAL_COLUMNS.join(","), ...rows.map((r) => TOTAL_COLUMNS.map((c) => String(r[c])).join(","))].join("\n") + "\n"
