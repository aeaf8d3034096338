/**
 * BftSeat: one node's seat in one shard's committee, driving chained
 * HotStuff (`domain/consensus/step.ts`, a pure state machine) with the
 * network, a clock and the node's event store, behind the same
 * `ShardConsensus` interface as the single producer.
 *
 * One fiber owns the consensus state. It takes inputs one at a time from its
 * inbox (frames from peers, its timer, wake-ups) and carries out the step's
 * outputs in order: `Persist` appends to `consensus-{shard}-{node}` before
 * any later output goes out, so a restarted seat — rebuilt from that stream
 * by `recover` — never votes twice in a view; `Send`/`Broadcast` go to the
 * `ConsensusNetwork`; `SetTimer` replaces the seat's one timer; `Commit`
 * queues the block for the applier; `RequestBlock` asks a peer.
 *
 * Transactions: `submit` admits with the single producer's rules
 * (`Admission.ts`: cheap checks, one signature verification, the pool) and
 * gossips the bytes to the committee, whose members admit them the same way.
 * The consensus mempool is the pool's next batch, written into the state
 * before each step: a timestamp entry, the receipts to credit, then the
 * transactions (`domain/chain/certification.ts` has the payload format). A
 * proposal is checked before the state machine sees it: its certificate, its
 * payload's form and time, the receipts it credits (held back until this
 * node's own index relayed them), and the signature of every transaction this
 * node has not verified yet (fetched from the proposer); a proposal with a bad
 * transaction is dropped, so no honest node votes for it.
 *
 * Commits: a second fiber (the applier) turns each committed consensus block
 * into the ledger block every node builds identically (`buildCertifiedBlock`)
 * and applies it to the ShardActor, fetching transactions it lacks from peers.
 * On start it re-applies committed blocks the ledger lacks (a crash between
 * the two appends).
 *
 * Pacing: the state machine proposes as soon as it can. A leader whose
 * proposal would be empty on an idle chain holds the input that made it
 * (nothing is persisted or sent) until `idleIntervalMs` after the last
 * proposal, or until work arrives; under load, until `blockIntervalMinMs`.
 * The pacemaker's timeout must exceed the idle interval.
 */
import { Clock, Deferred, Duration, Effect, Either, Fiber, HashMap, HashSet, Option, Queue, Ref } from "effect"
import type { Scope } from "effect"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import { decodeForAdmission } from "../domain/chain/admission.js"
import { buildCertifiedBlock, MAX_BLOCK_TRANSACTIONS } from "../domain/chain/block.js"
import { BftCertificate, CertificateQc } from "../domain/chain/bftCertificate.js"
import {
  consensusGenesisHash,
  creditableReceipts,
  parsePayload,
  receiptEntry,
  timestampEntry
} from "../domain/chain/certification.js"
import type { Hash32 } from "../domain/chain/hash.js"
import { ApplyBlock } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import { BATCH_LIMITS_DEFAULT, reconcile, takeBatch } from "../domain/chain/mempool.js"
import type { BatchLimits } from "../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../domain/chain/receipt.js"
import type { ShardId } from "../domain/chain/sharding.js"
import type { Transaction } from "../domain/chain/transaction.js"
import type { GenesisValidator } from "../domain/chain/validators.js"
import { committeeOf, committeeVerifierOf } from "../domain/chain/validators.js"
import { blsQuorumCrypto } from "../domain/consensus/bls.js"
import { voteDigest } from "../domain/consensus/digests.js"
import { verifyCertificate, verifyTimeoutCertificate } from "../domain/consensus/quorum.js"
import type { ConsensusConfig, ConsensusState, SafetyState } from "../domain/consensus/state.js"
import { genesisBlock, recover, safetyOf, SYNC_BLOCKS_MAX_DEFAULT, DETACHED_BLOCKS_MAX_DEFAULT } from "../domain/consensus/state.js"
import { step } from "../domain/consensus/step.js"
import type * as C from "../domain/consensus/types.js"
import { SignatureVerifier } from "../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../infra/eventstore/EventStore.js"
import type { ConsensusNetwork, Envelope } from "../infra/network/ConsensusNetwork.js"
import { decodeRecord, encodeRecord, type WireMessage } from "../infra/network/wire.js"
import { makeAdmission } from "./Admission.js"
import type { ShardConsensus } from "./ConsensusActor.js"
import type { ShardActor } from "./ShardActor.js"

export const consensusStream = (shard: number, node: number): string => `consensus-${shard}-${node}`

export interface BftSeatOptions {
  readonly shard: ShardId
  readonly shardActor: ShardActor
  readonly network: ConsensusNetwork
  readonly validators: ReadonlyArray<GenesisValidator>
  /** This node's seat: its index in `validators`. */
  readonly self: C.NodeIndex
  readonly blsSecretKey: Uint8Array
  /** An idle chain's block interval (the beacon's: its epoch clock). */
  readonly idleIntervalMs: number
  /** The pacemaker's first timeout of a view; must exceed `idleIntervalMs`. */
  readonly baseTimeoutMs: number
  /** The shortest time between proposals under load (default 0). */
  readonly blockIntervalMinMs?: number | undefined
  /** How far ahead of this node's clock a proposal's time may be (default 10 s). */
  readonly clockDriftMaxMs?: number | undefined
  readonly mempoolCapacity?: number | undefined
  readonly batchLimits?: BatchLimits | undefined
}

export const DropReason = [
  "UnknownSender",
  "SpoofedSender",
  "BadCertificate",
  "BadPayload",
  "ClockDrift",
  "BadTransaction",
  "MissingTransactions",
  "MissingReceipts",
  "MalformedTransaction"
] as const
export type DropReason = (typeof DropReason)[number]

export interface SeatStats {
  readonly dropped: Readonly<Record<DropReason, number>>
  /** Ledger blocks this seat applied. */
  readonly applied: number
  readonly view: C.View
  readonly committedHeight: number
}

export interface BftSeat extends ShardConsensus {
  /** A frame of this shard from a peer (the node's router hands it over). */
  readonly receive: (envelope: Envelope) => Effect.Effect<void>
  readonly stats: Effect.Effect<SeatStats>
  readonly safety: Effect.Effect<SafetyState>
}

type SeatInput =
  | { readonly _tag: "Start" }
  | { readonly _tag: "Net"; readonly from: C.NodeIndex; readonly message: C.Message; readonly checked: boolean }
  | { readonly _tag: "Timer"; readonly view: C.View }
  | { readonly _tag: "Wake" }

interface Committed {
  readonly block: C.Block
  readonly qc: C.QuorumCertificate
}

/** How long a proposal waits for receipts this node's index has not relayed yet. */
const RECEIPT_WAIT_MS = 3_000
const TX_FETCH_TIMEOUT_MS = 2_000
const RECEIPTS_PER_BLOCK_MAX = 512
/** Committed transactions kept for peers that fetch them. */
const RECENT_TXS_MAX = 50_000
const CLOCK_DRIFT_MAX_MS_DEFAULT = 10_000

export const makeBftSeat = (
  options: BftSeatOptions
): Effect.Effect<BftSeat, never, EventStore | SignatureVerifier | Scope.Scope> =>
  Effect.gen(function* () {
    const { shard, shardActor, network, validators, self } = options
    const store = yield* EventStore
    const signatures = yield* SignatureVerifier
    const scope = yield* Effect.scope
    const stream = consensusStream(shard, self)
    const committee = committeeOf(validators, shard)
    const verifier = Either.getOrThrow(committeeVerifierOf(validators))
    const config: ConsensusConfig = {
      committee,
      self,
      secretKey: options.blsSecretKey,
      crypto: blsQuorumCrypto,
      verifier,
      genesis: genesisBlock(committee),
      timing: { baseTimeoutMs: options.baseTimeoutMs, backoffExponentMax: 4 },
      blockTxsMax: MAX_BLOCK_TRANSACTIONS,
      syncBlocksMax: SYNC_BLOCKS_MAX_DEFAULT,
      detachedBlocksMax: DETACHED_BLOCKS_MAX_DEFAULT
    }
    if (config.genesis.hash !== consensusGenesisHash(shard)) throw new Error("the consensus genesis differs from the ledger's")
    const limits = options.batchLimits ?? BATCH_LIMITS_DEFAULT
    const blockIntervalMinMs = options.blockIntervalMinMs ?? 0
    const clockDriftMaxMs = options.clockDriftMaxMs ?? CLOCK_DRIFT_MAX_MS_DEFAULT

    // ---- recovery: the safety records, then the ledger
    const stored = yield* store.readStream(stream).pipe(Effect.orDie)
    const records = stored.map((e) => decodeRecord(e.data))
    let revision = stored.length === 0 ? -1 : stored[stored.length - 1]!.revision
    let state: ConsensusState = recover(config, records)
    let lastCommittedTs = 0
    const ledger0 = yield* shardActor.state
    const toReapply: Array<Committed> = []
    for (const r of records) {
      if (r._tag !== "Committed") continue
      lastCommittedTs = Math.max(lastCommittedTs, timestampOf(r.block))
      if (r.block.height > ledger0.height) toReapply.push(r)
    }

    const inbox = yield* Queue.unbounded<SeatInput>()
    const commits = yield* Queue.unbounded<Committed>()
    const wake = Queue.offer(inbox, { _tag: "Wake" }).pipe(Effect.asVoid)
    let wakeQueued = false
    const deferred: Array<SeatInput> = []
    const onWork = Effect.suspend(() => {
      if (deferred.length === 0 || wakeQueued) return Effect.void
      wakeQueued = true
      return wake
    })
    const admission = yield* makeAdmission({ ledger: ledger0, mempoolCapacity: options.mempoolCapacity, onWork })

    const dropped: Record<DropReason, number> = Object.fromEntries(DropReason.map((r) => [r, 0])) as Record<DropReason, number>
    const drop = (reason: DropReason, detail: string) =>
      Effect.sync(() => {
        dropped[reason]++
      }).pipe(Effect.zipRight(Effect.logDebug(`shard ${shard} seat ${self}: dropped (${reason}) ${detail}`)))
    let applied = 0

    // ---- transactions this node knows to be validly signed, and receipts relayed to it
    const txs = new Map<Hash32, Transaction>()
    const recent = new Map<Hash32, Transaction>()
    const knownTx = (hash: Hash32): Transaction | undefined => txs.get(hash) ?? recent.get(hash)
    const receiptBook = new Map<Hash32, CrossShardReceipt>()

    const send = (to: C.NodeIndex, message: C.Message) => network.send(to, { _tag: "Consensus", shard, message })
    const broadcast = (message: C.Message) => network.broadcast({ _tag: "Consensus", shard, message })

    // ---- transaction fetch
    let nextRequest = 0
    const requests = new Map<number, Deferred.Deferred<ReadonlyArray<Uint8Array>>>()
    /** Ask `peer` for `ids`; the ones that come back validly signed join `txs`. Bad signatures: "bad". */
    const fetchTxs = (peer: C.NodeIndex, ids: ReadonlyArray<Hash32>) =>
      Effect.gen(function* () {
        const requestId = nextRequest++
        const reply = yield* Deferred.make<ReadonlyArray<Uint8Array>>()
        requests.set(requestId, reply)
        yield* network.send(peer, { _tag: "TxRequest", shard, requestId, ids })
        const raw = yield* Deferred.await(reply).pipe(
          Effect.timeout(Duration.millis(TX_FETCH_TIMEOUT_MS)),
          Effect.orElseSucceed((): ReadonlyArray<Uint8Array> => []),
          Effect.ensuring(Effect.sync(() => requests.delete(requestId)))
        )
        const wanted = new Set(ids)
        const got: Array<Transaction> = []
        for (const bytes of raw) {
          const tx = decodeForAdmission(bytes)
          if (Either.isRight(tx) && wanted.has(tx.right.hash)) got.push(tx.right)
        }
        const valid = yield* signatures.verifyBatch(got)
        if (valid.some((ok) => !ok)) return "bad" as const
        for (const tx of got) txs.set(tx.hash, tx)
        return "ok" as const
      })

    // ---- frames that are not consensus messages: gossip and fetch
    const onTxGossip = (raw: ReadonlyArray<Uint8Array>) =>
      Effect.forEach(
        raw,
        (bytes) => {
          const tx = decodeForAdmission(bytes)
          if (Either.isLeft(tx)) return drop("MalformedTransaction", tx.left.detail)
          if (knownTx(tx.right.hash) !== undefined) return Effect.void
          return admission.submit(tx.right).pipe(
            Effect.tap(() => Effect.sync(() => txs.set(tx.right.hash, tx.right))),
            Effect.ignore
          )
        },
        { concurrency: "unbounded", discard: true }
      )

    const receive = (envelope: Envelope): Effect.Effect<void> => {
      const { from, message } = envelope
      if (!Number.isInteger(from) || from < 0 || from >= validators.length || from === self) {
        return drop("UnknownSender", `frame from ${from}`)
      }
      switch (message._tag) {
        case "Consensus":
          return Queue.offer(inbox, { _tag: "Net", from, message: message.message, checked: false }).pipe(Effect.asVoid)
        case "Txs":
          return Effect.forkIn(onTxGossip(message.raw), scope).pipe(Effect.asVoid)
        case "TxRequest": {
          const raw: Array<Uint8Array> = []
          for (const id of message.ids) {
            const tx = knownTx(id)
            if (tx !== undefined) raw.push(tx.encoded)
          }
          return network.send(from, { _tag: "TxResponse", shard, requestId: message.requestId, raw })
        }
        case "TxResponse": {
          const reply = requests.get(message.requestId)
          return reply === undefined ? Effect.void : Deferred.succeed(reply, message.raw).pipe(Effect.asVoid)
        }
      }
    }

    // ---- checks of a proposal before the state machine sees it
    const isGenesisQc = (qc: C.QuorumCertificate) => qc.view === 0 && qc.blockHash === config.genesis.hash
    const qcValid = (qc: C.QuorumCertificate) =>
      isGenesisQc(qc) ||
      Either.isRight(verifyCertificate(committee, verifier, voteDigest(shard, committee.epoch, qc.view, qc.blockHash), qc))
    const tcValid = (tc: C.TimeoutCertificate) =>
      Either.isRight(verifyTimeoutCertificate(committee, verifier, tc))

    /** "feed": hand it to the state machine; "held": re-offered later; "dropped". */
    const precheck = (input: Extract<SeatInput, { _tag: "Net" }>): Effect.Effect<"feed" | "held" | "dropped"> =>
      Effect.gen(function* () {
        const { from, message } = input
        switch (message._tag) {
          case "Vote":
            if (message.voter !== from) return yield* drop("SpoofedSender", `vote of ${message.voter} from ${from}`).pipe(Effect.as("dropped" as const))
            return "feed"
          case "Timeout":
            if (message.voter !== from) return yield* drop("SpoofedSender", `timeout of ${message.voter} from ${from}`).pipe(Effect.as("dropped" as const))
            if (!qcValid(message.highQc) || (message.lastTc !== undefined && !tcValid(message.lastTc))) {
              return yield* drop("BadCertificate", `timeout of view ${message.view} from ${from}`).pipe(Effect.as("dropped" as const))
            }
            return "feed"
          case "BlockRequest":
          case "BlockResponse":
            return "feed" // certified blocks: the state machine checks their QCs
          case "Proposal":
            break
        }
        const block = message.block
        if (block.proposer !== from) return yield* drop("SpoofedSender", `proposal of ${block.proposer} from ${from}`).pipe(Effect.as("dropped" as const))
        if (input.checked) return "feed"
        if (!qcValid(block.justify) || (message.tc !== undefined && !tcValid(message.tc))) {
          return yield* drop("BadCertificate", `proposal of view ${block.view} from ${from}`).pipe(Effect.as("dropped" as const))
        }
        const payload = parsePayload(block.payload)
        if (Either.isLeft(payload)) return yield* drop("BadPayload", payload.left).pipe(Effect.as("dropped" as const))
        const now = yield* Clock.currentTimeMillis
        if (payload.right.timestamp > now + clockDriftMaxMs) {
          return yield* drop("ClockDrift", `proposal time ${payload.right.timestamp}, now ${now}`).pipe(Effect.as("dropped" as const))
        }
        const { receiptIds, txHashes } = payload.right
        const unknown = txHashes.filter((h) => knownTx(h) === undefined)
        const missingReceipts = (ledger: LedgerState) =>
          receiptIds.filter((id) => !receiptBook.has(id) && !HashSet.has(ledger.receivedReceipts, id))
        const ledger = (yield* Ref.get(admission.view)).ledger
        if (unknown.length === 0 && missingReceipts(ledger).length === 0) return "feed"
        // Fetch what is missing off the seat's fiber, then offer the proposal again.
        yield* Effect.forkIn(
          Effect.gen(function* () {
            if (unknown.length > 0) {
              const fetched = yield* fetchTxs(from, unknown)
              if (fetched === "bad") return yield* drop("BadTransaction", `proposal of view ${block.view} holds a badly signed transaction`)
              if (unknown.some((h) => knownTx(h) === undefined)) {
                return yield* drop("MissingTransactions", `proposal of view ${block.view}: the proposer did not send them`)
              }
            }
            const deadline = (yield* Clock.currentTimeMillis) + RECEIPT_WAIT_MS
            while (missingReceipts((yield* Ref.get(admission.view)).ledger).length > 0) {
              if ((yield* Clock.currentTimeMillis) > deadline) {
                return yield* drop("MissingReceipts", `proposal of view ${block.view} credits receipts this node never saw`)
              }
              yield* Effect.sleep(Duration.millis(25))
            }
            yield* Queue.offer(inbox, { ...input, checked: true })
          }),
          scope
        )
        return "held"
      })

    // ---- the consensus mempool: what a proposal of this seat would hold
    /** The latest time in the chain a proposal would extend: its time must be later, so it is never a repeat. */
    const chainTimeMax = (s: ConsensusState): number => {
      let max = lastCommittedTs
      let cursor = Option.getOrUndefined(HashMap.get(s.blocks, s.highQc.blockHash))
      while (cursor !== undefined && cursor.height > s.committedHeight) {
        max = Math.max(max, timestampOf(cursor))
        cursor = Option.getOrUndefined(HashMap.get(s.blocks, cursor.parentHash))
      }
      return max
    }
    let cachedPool: unknown = undefined
    let cachedReceipts: unknown = undefined
    let cachedEntries: ReadonlyArray<C.TxId> = []
    const prepare = (s: ConsensusState, now: number): Effect.Effect<ConsensusState> =>
      Effect.map(Ref.get(admission.view), (v) => {
        if (v.pool !== cachedPool || v.receipts !== cachedReceipts) {
          const receipts = Array.from(HashMap.keys(v.receipts)).slice(0, RECEIPTS_PER_BLOCK_MAX)
          const batch = takeBatch(v.pool, { ...limits, countMax: Math.min(limits.countMax, MAX_BLOCK_TRANSACTIONS - 1 - receipts.length) })
          cachedEntries = [...receipts.map(receiptEntry), ...batch.map((tx) => tx.hash)]
          cachedPool = v.pool
          cachedReceipts = v.receipts
        }
        return { ...s, mempool: [timestampEntry(Math.max(now, chainTimeMax(s) + 1)), ...cachedEntries] }
      })

    // ---- pacing
    let lastProposalAt = 0
    const isIdleProposal = (s: ConsensusState, block: C.Block): boolean => {
      if (block.payload.length > 1) return false
      let cursor = Option.getOrUndefined(HashMap.get(s.blocks, block.parentHash))
      while (cursor !== undefined && cursor.height > s.committedHeight) {
        if (cursor.payload.length > 1) return false
        cursor = Option.getOrUndefined(HashMap.get(s.blocks, cursor.parentHash))
      }
      return true
    }
    const ownProposal = (outputs: ReadonlyArray<C.Output>): C.Block | undefined => {
      for (const o of outputs) {
        if (o._tag === "Broadcast" && o.message._tag === "Proposal" && o.message.block.proposer === self) return o.message.block
      }
      return undefined
    }

    // ---- outputs
    let timer: Fiber.RuntimeFiber<void> | undefined
    const armTimer = (view: C.View, durationMs: number) =>
      Effect.gen(function* () {
        if (timer !== undefined) yield* Fiber.interrupt(timer)
        timer = yield* Effect.forkIn(
          Effect.sleep(Duration.millis(durationMs)).pipe(Effect.zipRight(Queue.offer(inbox, { _tag: "Timer", view })), Effect.asVoid),
          scope
        )
      })

    const persist = (batch: ReadonlyArray<C.SafetyRecord>) =>
      Effect.gen(function* () {
        const events = batch.map((record, i) => ({
          id: `${stream}:${revision + 1 + i}`,
          type: record._tag,
          data: encodeRecord(record),
          metadata: { shard, node: self }
        }))
        const result = yield* store.append(stream, events, revision < 0 ? "no_stream" : revision)
        revision = result.nextRevision
      }).pipe(Effect.orDie) // a seat that cannot persist must not go on: it could vote twice

    const carryOut = (outputs: ReadonlyArray<C.Output>) =>
      Effect.gen(function* () {
        let records: Array<C.SafetyRecord> = []
        for (const o of outputs) {
          if (o._tag === "Persist") {
            records.push(o.record)
            continue
          }
          if (records.length > 0) {
            yield* persist(records)
            records = []
          }
          switch (o._tag) {
            case "Send":
              yield* send(o.to, o.message)
              break
            case "Broadcast":
              yield* broadcast(o.message)
              break
            case "SetTimer":
              yield* armTimer(o.view, o.durationMs)
              break
            case "Commit":
              lastCommittedTs = Math.max(lastCommittedTs, timestampOf(o.block))
              yield* Queue.offer(commits, { block: o.block, qc: o.qc })
              break
            case "RequestBlock":
              yield* send(o.from, { _tag: "BlockRequest", blockHash: o.blockHash })
              break
          }
        }
        if (records.length > 0) yield* persist(records)
      })

    const toStateInput = (input: SeatInput): C.Input =>
      input._tag === "Net"
        ? { _tag: "Received", from: input.from, message: input.message }
        : input._tag === "Timer"
          ? { _tag: "TimerFired", view: input.view }
          : { _tag: "Start" }

    const scheduleWake = (at: number, now: number) =>
      Effect.forkIn(Effect.sleep(Duration.millis(Math.max(0, at - now))).pipe(Effect.zipRight(wake)), scope).pipe(Effect.asVoid)

    /** One input through the state machine (unless it would make a proposal that is not due yet). */
    const run = (input: SeatInput, force: boolean) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const result = step(config, yield* prepare(state, now), toStateInput(input))
        const proposal = ownProposal(result.outputs)
        if (proposal !== undefined && !force && input._tag === "Net") {
          const v = yield* Ref.get(admission.view)
          const idle = isIdleProposal(result.state, proposal) && v.pool.count === 0 && HashMap.size(v.receipts) === 0
          const due = lastProposalAt + (idle ? options.idleIntervalMs : blockIntervalMinMs)
          if (now < due) {
            deferred.push(input)
            yield* scheduleWake(due, now)
            return
          }
        }
        if (proposal !== undefined || (input._tag === "Net" && input.message._tag === "Proposal")) lastProposalAt = now
        state = result.state
        yield* carryOut(result.outputs)
      })

    const handle = (input: SeatInput) =>
      Effect.gen(function* () {
        switch (input._tag) {
          case "Wake": {
            wakeQueued = false
            const again = deferred.splice(0, deferred.length)
            for (const d of again) yield* run(d, false)
            return
          }
          case "Net": {
            const verdict = yield* precheck(input)
            if (verdict === "feed") yield* run(input, false)
            return
          }
          default:
            return yield* run(input, false)
        }
      })

    // ---- the applier: committed consensus blocks → ledger blocks
    const awaitTransactions = (hashes: ReadonlyArray<Hash32>) =>
      Effect.gen(function* () {
        for (let attempt = 0; ; attempt++) {
          const missing = hashes.filter((h) => knownTx(h) === undefined)
          if (missing.length === 0) return hashes.map((h) => knownTx(h)!)
          const peer = network.peers[attempt % network.peers.length]!
          yield* fetchTxs(peer, missing)
          if (hashes.some((h) => knownTx(h) === undefined)) yield* Effect.sleep(Duration.millis(50))
        }
      })
    const awaitReceipts = (ids: ReadonlyArray<Hash32>) =>
      Effect.gen(function* () {
        while (ids.some((id) => !receiptBook.has(id))) yield* Effect.sleep(Duration.millis(25))
        return ids.map((id) => receiptBook.get(id)!)
      })

    const applyCommitted = ({ block, qc }: Committed) =>
      Effect.gen(function* () {
        const ledger = yield* shardActor.state
        if (block.height <= ledger.height) return
        if (block.height !== ledger.height + 1) {
          return yield* Effect.dieMessage(`shard ${shard}: committed block ${block.height} after ledger height ${ledger.height}`)
        }
        const payload = parsePayload(block.payload)
        if (Either.isLeft(payload)) return yield* Effect.dieMessage(`shard ${shard}: a committed payload is malformed: ${payload.left}`)
        const { timestamp, receiptIds, txHashes } = payload.right
        const transactions = yield* awaitTransactions(txHashes)
        const receipts = yield* awaitReceipts(creditableReceipts(receiptIds, (id) => HashSet.has(ledger.receivedReceipts, id)))
        const certificate = new BftCertificate({
          blockHash: block.hash,
          epoch: block.epoch,
          view: block.view,
          height: block.height,
          parentHash: block.parentHash,
          justifyView: block.justify.view,
          justifyHash: block.justify.blockHash,
          proposer: block.proposer,
          payload: block.payload,
          qc: new CertificateQc({ view: qc.view, signers: qc.signers, signature: qc.signature })
        })
        const ledgerBlock = buildCertifiedBlock({
          chainId: ledger.chain!.chainId,
          shard,
          height: ledger.height + 1,
          parentHash: ledger.lastBlockHash,
          eventsRoot: ledger.lastEventsRoot,
          timestamp: Math.max(ledger.lastTimestamp, timestamp),
          proposer: validators[block.proposer]!.address,
          transactions,
          receipts,
          certificate
        })
        const reply = yield* shardActor.ask(new ApplyBlock({ block: ledgerBlock })).pipe(
          Effect.catchAll((e) => Effect.dieMessage(`shard ${shard}: the ledger refused committed block ${block.height}: ${e.message}`))
        )
        applied++
        yield* Ref.update(admission.view, (v) => ({
          ...v,
          ledger: reply.state,
          pool: reconcile(v.pool, reply.state, transactions),
          receipts: HashMap.filter(v.receipts, (_, id) => !HashSet.has(reply.state.receivedReceipts, id))
        }))
        for (const r of receipts) receiptBook.delete(r.receiptId)
        for (const tx of transactions) {
          txs.delete(tx.hash)
          recent.set(tx.hash, tx)
        }
        while (recent.size > RECENT_TXS_MAX) recent.delete(recent.keys().next().value!)
      })

    yield* Effect.forkIn(
      Queue.take(commits).pipe(Effect.flatMap(applyCommitted), Effect.forever, Effect.tapDefect((d) => Effect.logError(`shard ${shard} seat ${self}: applier stopped`, d))),
      scope
    )
    for (const c of toReapply) yield* Queue.offer(commits, c)

    yield* Effect.forkIn(
      Queue.take(inbox).pipe(Effect.flatMap(handle), Effect.forever, Effect.tapDefect((d) => Effect.logError(`shard ${shard} seat ${self}: stopped`, d))),
      scope
    )
    yield* Queue.offer(inbox, { _tag: "Start" })
    yield* Effect.logInfo(
      `shard ${shard}: BFT seat ${self} of ${validators.length}, view ${state.view}, committed height ${state.committedHeight}, ledger height ${ledger0.height}`
    )

    const submit = (tx: Transaction): Effect.Effect<void, AdmissionRejected> =>
      admission.submit(tx).pipe(
        Effect.tap(() =>
          Effect.sync(() => txs.set(tx.hash, tx)).pipe(
            Effect.zipRight(network.broadcast({ _tag: "Txs", shard, raw: [tx.encoded] } satisfies WireMessage))
          )
        )
      )

    const deliverReceipt = (receipt: CrossShardReceipt): Effect.Effect<void> =>
      Effect.flatMap(Ref.get(admission.view), (v) => {
        if (HashSet.has(v.ledger.receivedReceipts, receipt.receiptId)) return Effect.void
        receiptBook.set(receipt.receiptId, receipt)
        return admission.deliverReceipt(receipt)
      })

    const seat: BftSeat = {
      shard,
      submit,
      deliverReceipt,
      ledger: Ref.get(admission.view).pipe(Effect.map((v) => v.ledger)),
      pending: Ref.get(admission.view).pipe(Effect.map((v) => v.pool)),
      receive,
      stats: Effect.sync(() => ({ dropped: { ...dropped }, applied, view: state.view, committedHeight: state.committedHeight })),
      safety: Effect.sync(() => safetyOf(state))
    }
    return seat
  })

/** A consensus block's proposal time (its payload's first entry); 0 for genesis. */
const timestampOf = (block: C.Block): number => {
  const first = block.payload[0]
  if (first === undefined || !first.startsWith("t:")) return 0
  const ms = Number(first.slice(2))
  return Number.isSafeInteger(ms) ? ms : 0
}
