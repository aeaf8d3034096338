/**
 * BftSeat: one node's seat in one shard's committee, driving chained
 * HotStuff (`domain/consensus/step.ts`, a pure state machine) with the
 * network, a clock and the node's event store, behind the same
 * `ShardConsensus` interface as the single producer.
 *
 * One fiber owns the consensus state. It takes inputs one at a time from its
 * inbox (frames from peers, at most `SEAT_INBOX_MAX` waiting: beyond, dropped
 * and counted; its timer and wake-ups, never dropped) and carries out the step's
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
 * Epochs: the seat follows the committee its shard's ledger names
 * (`LedgerState.committee`: the genesis validators, then each handover's).
 * When the beacon has elected the next epoch's committee for this shard, a
 * leader puts the handover (`c:<epoch>:<digest>`) in its proposal; members
 * vote for it only once their own beacon elected the same committee. When the
 * handover block is applied, the seat drops its epoch's state and starts the
 * new committee's chain on its epoch genesis, with its own records stream
 * (`consensus-{shard}-{node}-e{epoch}`); what the old committee committed
 * after the handover is never applied. A node outside the committee runs
 * the same seat as an observer (`OBSERVER`): it checks and commits what the
 * members certify, so it can serve, and later join, the shard.
 *
 * Pacing: the state machine proposes as soon as it can. A leader whose
 * proposal would be empty on an idle chain holds the input that made it
 * (nothing is persisted or sent) until `idleIntervalMs` after the last
 * proposal, or until work arrives; under load, until `blockIntervalMinMs`.
 * The pacemaker's timeout must exceed the idle interval.
 */
import { Clock, Deferred, Duration, Effect, Either, Fiber, HashMap, HashSet, Option, Queue, Random, Ref } from "effect"
import type { Scope } from "effect"
import { receiptsToPropose } from "../domain/chain/receiptsToPropose.js"
import type { AdmissionRejected } from "../domain/chain/admission.js"
import { decodeForAdmission } from "../domain/chain/admission.js"
import { buildCertifiedBlock, MAX_BLOCK_TRANSACTIONS } from "../domain/chain/block.js"
import type { Block } from "../domain/chain/block.js"
import { CatchUpRefused, certificateOf, commitProofs, provableAnswer, verifyCatchUp, type CommitProof } from "../domain/chain/catchUp.js"
import { creditableReceipts, handoverEntry, parsePayload, receiptEntry, timestampEntry } from "../domain/chain/certification.js"
import { committeeDigest, committeeVerifier, consensusCommitteeOf, type ShardCommittee } from "../domain/chain/committees.js"
import type { Address } from "../domain/chain/keys.js"
import { bytesToHex, hexToBytes } from "../domain/chain/hex.js"
import type { Hash32 } from "../domain/chain/hash.js"
import { ApplyBlock } from "../domain/chain/ledger.js"
import type { LedgerState } from "../domain/chain/ledger.js"
import { BATCH_LIMITS_DEFAULT, reconcile, takeBatch } from "../domain/chain/mempool.js"
import type { BatchLimits } from "../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../domain/chain/receipt.js"
import type { ShardId } from "../domain/chain/sharding.js"
import type { Transaction } from "../domain/chain/transaction.js"
import { blsQuorumCrypto } from "../domain/consensus/bls.js"
import { timeoutDigest, voteDigest } from "../domain/consensus/digests.js"
import { verifyCertificate, verifyTimeoutCertificate } from "../domain/consensus/quorum.js"
import type { ConsensusConfig, ConsensusState, SafetyState } from "../domain/consensus/state.js"
import {
  DETACHED_BLOCKS_MAX_DEFAULT,
  epochGenesisBlock,
  OBSERVER,
  recover,
  safetyOf,
  SYNC_BLOCKS_MAX_DEFAULT
} from "../domain/consensus/state.js"
import { blocksFor, step } from "../domain/consensus/step.js"
import { cheapRefusal } from "../domain/consensus/cheapChecks.js"
import type * as C from "../domain/consensus/types.js"
import { SignatureVerifier } from "../infra/crypto/SignatureVerifier.js"
import { EventStore } from "../infra/eventstore/EventStore.js"
import type { ConsensusNetwork, Envelope, PeerId } from "../infra/network/ConsensusNetwork.js"
import { decodeRecord, encodeRecord, LEDGER_BLOCKS_PER_RESPONSE, type WireMessage } from "../infra/network/wire.js"
import { makeAdmission } from "./Admission.js"
import type { ShardConsensus } from "./ConsensusActor.js"
import type { ShardActor } from "./ShardActor.js"

/** A node's safety records for one shard and epoch (epoch 0's keeps the name it had before epochs). */
export const consensusStream = (shard: number, node: number, epoch = 0): string =>
  epoch === 0 ? `consensus-${shard}-${node}` : `consensus-${shard}-${node}-e${epoch}`

export interface BftSeatOptions {
  readonly shard: ShardId
  readonly shardActor: ShardActor
  readonly network: ConsensusNetwork
  /** The validator address of each network peer id (this node's is `roster[network.self]`). */
  readonly roster: ReadonlyArray<Address>
  /** The committee the beacon elected for this shard in `epoch`, once it has (undefined until then). */
  readonly elected: (epoch: number) => Effect.Effect<ShardCommittee | undefined>
  /** The ledger blocks this node applied from `fromHeight` on, at most `max` (what it serves to a peer catching up). */
  readonly readBlocks: (fromHeight: number, max: number) => Effect.Effect<ReadonlyArray<Block>>
  /** Transactions this node applied, by hash (those it has): what it serves when its memory no longer holds them (after a restart). */
  readonly readTransactions: (hashes: ReadonlyArray<Hash32>) => Effect.Effect<ReadonlyArray<Transaction>>
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
  "MalformedTransaction",
  "StaleEpoch",
  "BadHandover",
  /** A fetch or catch-up answer from a peer that was not asked, or with an id that was not its request's. */
  "UnsolicitedAnswer",
  /** A catch-up answer without a valid commit proof (`catchUpRefused` says why). */
  "UnprovenCatchUp",
  /** A consensus frame while the seat's inbox held `SEAT_INBOX_MAX` of them. */
  "InboxFull",
  /** A proposal not from its view's leader, or a message out of form (before any pairing: `cheapChecks.ts`). */
  "WrongLeader",
  "BadShape",
  /** A timeout this node already holds from that member for that view. */
  "Duplicate",
  /** Gossip or a request from a peer while `BACKGROUND_MAX` of them were being handled. */
  "Busy"
] as const
export type DropReason = (typeof DropReason)[number]

export interface SeatStats {
  readonly dropped: Readonly<Record<DropReason, number>>
  /** Catch-up answers refused, by reason. */
  readonly catchUpRefused: Readonly<Record<CatchUpRefused["reason"], number>>
  /** Ledger blocks this seat applied. */
  readonly applied: number
  readonly view: C.View
  readonly committedHeight: number
  /** The epoch of the committee this seat follows, and whether it sits in it. */
  readonly epoch: number
  readonly member: boolean
}

export interface BftSeat extends ShardConsensus {
  /** A frame of this shard from a peer (the node's router hands it over). */
  readonly receive: (envelope: Envelope) => Effect.Effect<void>
  readonly stats: Effect.Effect<SeatStats>
  readonly safety: Effect.Effect<SafetyState>
}

type NetInput = {
  readonly _tag: "Net"
  readonly peer: PeerId
  readonly epoch: number
  readonly message: C.Message
  readonly checked: boolean
}

type SeatInput =
  | { readonly _tag: "Start" }
  | NetInput
  | { readonly _tag: "Timer"; readonly epoch: number; readonly view: C.View }
  | { readonly _tag: "Wake" }
  | { readonly _tag: "Handover" }

/** One epoch of the seat: the committee, this node's place in it, and its records stream. */
interface EpochSeat {
  readonly committee: ShardCommittee
  readonly config: ConsensusConfig
  readonly stream: string
  /** Seat by network peer id (members only). */
  readonly seatOf: ReadonlyMap<PeerId, C.NodeIndex>
  /** Network peer id by seat (undefined: a member this node has no connection to). */
  readonly peerOf: ReadonlyArray<PeerId | undefined>
}

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
/** Most timeouts a node answers for the stragglers of the epoch it left. */
const STRAGGLER_ANSWERS_MAX = 4_096
/** How long a node that sees a later epoch's frames waits before catching up from its peers' ledgers. */
const CATCH_UP_DELAY_MS = 1_000
/** Frames of the next epoch kept until this node reaches it (it may apply the handover a little later than its peers). */
const FUTURE_FRAMES_MAX = 1_024
/** Consensus frames waiting in the seat's inbox: beyond, frames are dropped and counted (the seat's own inputs never are). */
export const SEAT_INBOX_MAX = 8_192
/** Peers' gossip batches and requests handled at once, off the seat's fiber (beyond: dropped, `Busy`). */
export const BACKGROUND_MAX = 1_024
/** Commit proofs kept for peers catching up: of the latest commits, and of handovers (see `catchUp.ts`). */
const PROOFS_KEPT_MAX = 256
const HANDOVER_PROOFS_MAX = 1_024

export const makeBftSeat = (
  options: BftSeatOptions
): Effect.Effect<BftSeat, never, EventStore | SignatureVerifier | Scope.Scope> =>
  Effect.gen(function* () {
    const { shard, shardActor, network, roster } = options
    const self = network.self
    const store = yield* EventStore
    const signatures = yield* SignatureVerifier
    const scope = yield* Effect.scope
    const limits = options.batchLimits ?? BATCH_LIMITS_DEFAULT
    const blockIntervalMinMs = options.blockIntervalMinMs ?? 0
    const clockDriftMaxMs = options.clockDriftMaxMs ?? CLOCK_DRIFT_MAX_MS_DEFAULT
    const peerByAddress = new Map<string, PeerId>(roster.map((address, peer) => [address, peer]))

    /** The epoch the ledger's committee certifies, from where that committee's chain starts. */
    const epochOf = (ledger: LedgerState): EpochSeat => {
      const committee = ledger.committee
      if (committee === null || ledger.committeeStart === null) throw new Error(`shard ${shard}: a BFT seat on a ledger without a committee`)
      const consensusCommittee = consensusCommitteeOf(committee)
      const peerOf = committee.members.map((m) => peerByAddress.get(m.address))
      const seatOf = new Map<PeerId, C.NodeIndex>()
      peerOf.forEach((peer, seat) => peer !== undefined && seatOf.set(peer, seat))
      const seat = seatOf.get(self)
      const config: ConsensusConfig = {
        committee: consensusCommittee,
        self: seat ?? OBSERVER,
        secretKey: options.blsSecretKey,
        crypto: blsQuorumCrypto,
        verifier: Either.getOrThrow(committeeVerifier(committee.members)),
        genesis: epochGenesisBlock(consensusCommittee, ledger.committeeStart.parentHash, ledger.committeeStart.height),
        timing: { baseTimeoutMs: options.baseTimeoutMs, backoffExponentMax: 4 },
        blockTxsMax: MAX_BLOCK_TRANSACTIONS,
        syncBlocksMax: SYNC_BLOCKS_MAX_DEFAULT,
        detachedBlocksMax: DETACHED_BLOCKS_MAX_DEFAULT
      }
      return { committee, config, stream: consensusStream(shard, self, committee.epoch), seatOf, peerOf }
    }

    // ---- recovery: the safety records of the ledger's epoch, then the ledger
    const ledger0 = yield* shardActor.state
    let current = epochOf(ledger0)
    let revision = -1
    let state: ConsensusState = undefined as never
    let lastCommittedTs = ledger0.lastTimestamp
    /** Commit proofs this node can give a peer catching up, by consensus block hash. */
    const proofs = new Map<Hash32, CommitProof>()
    const handoverProofs = new Map<Hash32, CommitProof>()
    const keepProof = (blockHash: Hash32, handover: boolean, proof: CommitProof) => {
      const kept = handover ? handoverProofs : proofs
      kept.delete(blockHash)
      kept.set(blockHash, proof)
      while (kept.size > (handover ? HANDOVER_PROOFS_MAX : PROOFS_KEPT_MAX)) kept.delete(kept.keys().next().value!)
    }
    /** The blocks of the state machine's commit under way (its last one carries the proof). */
    let commitBatch: Array<{ readonly block: C.Block; readonly qc: C.QuorumCertificate }> = []
    const onCommitted = (block: C.Block, qc: C.QuorumCertificate, proof: C.CommitProof | undefined) => {
      commitBatch.push({ block, qc })
      if (proof === undefined) return
      for (const p of commitProofs(commitBatch, proof)) keepProof(p.blockHash, p.handover, p.proof)
      commitBatch = []
    }
    /** Read the epoch's records: the state to resume from, and the commits the ledger lacks. */
    const resume = (ledger: LedgerState) =>
      Effect.gen(function* () {
        const stored = yield* store.readStream(current.stream).pipe(Effect.orDie)
        const records = stored.map((e) => decodeRecord(e.data))
        commitBatch = []
        revision = stored.length === 0 ? -1 : stored[stored.length - 1]!.revision
        state = recover(current.config, records)
        const missing: Array<Committed> = []
        for (const r of records) {
          if (r._tag !== "Committed") continue
          onCommitted(r.block, r.qc, r.proof)
          lastCommittedTs = Math.max(lastCommittedTs, timestampOf(r.block))
          if (r.block.height > ledger.height) missing.push(r)
        }
        // The transactions of the blocks it voted for, kept with the votes (`persist`): once they commit,
        // the ledger needs their bytes, and after a restart of every node no memory holds them.
        const voted: Array<Transaction> = []
        for (const e of stored) {
          const raw = (e.data as { readonly txs?: unknown }).txs
          if (e.type !== "Voted" || !Array.isArray(raw)) continue
          for (const hex of raw) {
            const bytes = typeof hex === "string" ? hexToBytes(hex) : undefined
            const tx = bytes === undefined || Either.isLeft(bytes) ? undefined : decodeForAdmission(bytes.right)
            if (tx !== undefined && Either.isRight(tx)) voted.push(tx.right)
          }
        }
        return { missing, voted }
      })
    const resumed = yield* resume(ledger0)
    // The proof of the handover that started this epoch is in the last epoch's records: a peer one epoch
    // behind needs it to catch up, and after a restart no memory holds it.
    if (current.committee.epoch > 0) {
      const last = yield* store.readStream(consensusStream(shard, self, current.committee.epoch - 1)).pipe(Effect.orDie)
      let batch: Array<{ readonly block: C.Block; readonly qc: C.QuorumCertificate }> = []
      for (const e of last) {
        const r = decodeRecord(e.data)
        if (r._tag !== "Committed") continue
        batch.push({ block: r.block, qc: r.qc })
        if (r.proof === undefined) continue
        for (const p of commitProofs(batch, r.proof)) if (p.handover) keepProof(p.blockHash, true, p.proof)
        batch = []
      }
    }
    const toReapply = resumed.missing

    const inbox = yield* Queue.unbounded<SeatInput>()
    /** Consensus frames in the inbox (bounded by SEAT_INBOX_MAX; the seat's own inputs are not counted). */
    let netQueued = 0
    const commits = yield* Queue.unbounded<Committed>()
    const wake = Queue.offer(inbox, { _tag: "Wake" }).pipe(Effect.asVoid)
    let wakeQueued = false
    /** Inputs whose proposal is not due yet (pacing), with their sender's seat. */
    const deferred: Array<{ readonly input: NetInput; readonly from: C.NodeIndex }> = []
    const onWork = Effect.suspend(() => {
      if (deferred.length === 0 || wakeQueued) return Effect.void
      wakeQueued = true
      return wake
    })
    const admission = yield* makeAdmission({ ledger: ledger0, mempoolCapacity: options.mempoolCapacity, onWork })

    const dropped: Record<DropReason, number> = Object.fromEntries(DropReason.map((r) => [r, 0])) as Record<DropReason, number>
    const catchUpRefused = Object.fromEntries(CatchUpRefused.fields.reason.literals.map((r) => [r, 0])) as Record<CatchUpRefused["reason"], number>
    const drop = (reason: DropReason, detail: string) =>
      Effect.sync(() => {
        dropped[reason]++
      }).pipe(Effect.zipRight(Effect.logDebug(`shard ${shard} seat ${self}: dropped (${reason}) ${detail}`)))
    let applied = 0

    // ---- transactions this node knows to be validly signed, and receipts relayed to it
    const txs = new Map<Hash32, Transaction>(resumed.voted.map((tx) => [tx.hash, tx]))
    const recent = new Map<Hash32, Transaction>()
    const knownTx = (hash: Hash32): Transaction | undefined => txs.get(hash) ?? recent.get(hash)
    const receiptBook = new Map<Hash32, CrossShardReceipt>()

    const send = (to: C.NodeIndex, message: C.Message) => {
      const peer = current.peerOf[to]
      return peer === undefined ? Effect.void : network.send(peer, { _tag: "Consensus", shard, epoch: current.committee.epoch, message })
    }
    const broadcast = (message: C.Message) => network.broadcast({ _tag: "Consensus", shard, epoch: current.committee.epoch, message })

    // ---- transaction fetch
    const txRequests = makeRequests<ReadonlyArray<Uint8Array>>([])
    /** Ask `peer` for `ids`; the ones that come back validly signed join `txs`. Bad signatures: "bad". */
    const fetchTxs = (peer: C.NodeIndex, ids: ReadonlyArray<Hash32>) =>
      Effect.gen(function* () {
        const raw = yield* txRequests.ask(peer, (requestId) => network.send(peer, { _tag: "TxRequest", shard, requestId, ids }))
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

    /** Work a peer's frame asks for, off the receiving fiber, at most BACKGROUND_MAX at once. */
    let inBackground = 0
    const background = (from: PeerId, what: string, work: Effect.Effect<void>): Effect.Effect<void> => {
      if (inBackground >= BACKGROUND_MAX) return drop("Busy", `a ${what} from peer ${from}`)
      inBackground++
      return Effect.forkIn(work.pipe(Effect.ensuring(Effect.sync(() => inBackground--))), scope).pipe(Effect.asVoid)
    }

    const receive = (envelope: Envelope): Effect.Effect<void> => {
      const { from, message } = envelope
      if (!Number.isInteger(from) || from < 0 || from >= roster.length || from === self) {
        return drop("UnknownSender", `frame from ${from}`)
      }
      switch (message._tag) {
        case "Consensus":
          if (netQueued >= SEAT_INBOX_MAX) return drop("InboxFull", `a ${message.message._tag} from peer ${from}`)
          netQueued++
          return Queue.offer(inbox, { _tag: "Net", peer: from, epoch: message.epoch, message: message.message, checked: false }).pipe(Effect.asVoid)
        case "Txs":
          return background(from, "Txs", onTxGossip(message.raw))
        case "TxRequest": {
          const raw: Array<Uint8Array> = []
          const applied: Array<Hash32> = []
          for (const id of message.ids) {
            const tx = knownTx(id)
            if (tx !== undefined) raw.push(tx.encoded)
            else applied.push(id)
          }
          if (applied.length === 0) return network.send(from, { _tag: "TxResponse", shard, requestId: message.requestId, raw })
          // Not in memory (a restart empties it): from the blocks this node applied, off the receiving fiber.
          return background(
            from,
            "TxRequest",
            options.readTransactions(applied).pipe(
              Effect.flatMap((stored) =>
                network.send(from, { _tag: "TxResponse", shard, requestId: message.requestId, raw: [...raw, ...stored.map((tx) => tx.encoded)] })
              )
            )
          )
        }
        case "LedgerBlocksRequest":
          // One block beyond the answer: it may prove the answer's last one committed (`provableAnswer`).
          return background(
            from,
            "LedgerBlocksRequest",
            options.readBlocks(message.fromHeight, LEDGER_BLOCKS_PER_RESPONSE + 1).pipe(
              Effect.flatMap((read) => {
                const answer = provableAnswer(read, LEDGER_BLOCKS_PER_RESPONSE, (h) => handoverProofs.get(h) ?? proofs.get(h))
                return network.send(from, { _tag: "LedgerBlocksResponse", shard, requestId: message.requestId, ...answer })
              })
            )
          )
        case "LedgerBlocksResponse":
          return Effect.flatMap(ledgerRequests.answer(from, message.requestId, { blocks: message.blocks, proof: message.proof }), (matched) =>
            matched ? Effect.void : drop("UnsolicitedAnswer", `a LedgerBlocksResponse from peer ${from}, request ${message.requestId}`)
          )
        case "TxResponse":
          return Effect.flatMap(txRequests.answer(from, message.requestId, message.raw), (matched) =>
            matched ? Effect.void : drop("UnsolicitedAnswer", `a TxResponse from peer ${from}, request ${message.requestId}`)
          )
      }
    }

    // ---- checks of a proposal before the state machine sees it
    const isGenesisQc = (qc: C.QuorumCertificate) => qc.view === 0 && qc.blockHash === current.config.genesis.hash
    /** A QC the state machine already accepted costs no pairing. */
    const isKnownQc = (qc: C.QuorumCertificate) => {
      const known = HashMap.get(state.certified, qc.blockHash)
      return Option.isSome(known) && known.value.view === qc.view
    }
    const qcValid = (qc: C.QuorumCertificate) => {
      const { committee, verifier } = current.config
      return (
        isGenesisQc(qc) ||
        isKnownQc(qc) ||
        Either.isRight(verifyCertificate(committee, verifier, voteDigest(shard, committee.epoch, qc.view, qc.blockHash), qc))
      )
    }
    /** A TC no later (and no lower) than the one this node holds changes nothing: the state machine ignores it, unchecked. */
    const tcValid = (tc: C.TimeoutCertificate) => {
      const last = state.lastTc
      const highest = (t: C.TimeoutCertificate) => Math.max(-1, ...t.highQcViews)
      const news = last === undefined || tc.view > last.view || (tc.view === last.view && highest(tc) < highest(last))
      return !news || Either.isRight(verifyTimeoutCertificate(current.config.committee, current.config.verifier, tc))
    }

    /** The handover a proposal names is to the committee this node's beacon elected: "ok", "wait" (not elected here yet) or why not. */
    const checkHandover = (epoch: number, digest: Hash32) =>
      Effect.map(options.elected(epoch), (elected): "ok" | "wait" | string => {
        if (epoch !== current.committee.epoch + 1) return `a handover to epoch ${epoch} in epoch ${current.committee.epoch}`
        if (elected === undefined) return "wait"
        const ours = committeeDigest(elected)
        return ours === digest ? "ok" : `committee ${digest}, this node's beacon elected ${ours}`
      })

    /** "feed": hand it to the state machine; "held": re-offered later; "dropped". */
    const precheck = (input: NetInput, from: C.NodeIndex): Effect.Effect<"feed" | "held" | "dropped"> =>
      Effect.gen(function* () {
        const { message } = input
        // Cheap checks first: nothing that fails them costs a pairing.
        const refused = cheapRefusal(current.config, state, from, message)
        if (refused !== undefined) return yield* drop(refused, `a ${message._tag} from seat ${from}`).pipe(Effect.as("dropped" as const))
        switch (message._tag) {
          case "Vote":
            return "feed"
          case "Timeout":
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
        if (input.checked || HashMap.has(state.blocks, block.hash)) return "feed" // checked already (here, or as part of the tree)
        if (!qcValid(block.justify) || (message.tc !== undefined && !tcValid(message.tc))) {
          return yield* drop("BadCertificate", `proposal of view ${block.view} from ${from}`).pipe(Effect.as("dropped" as const))
        }
        const payload = parsePayload(block.payload)
        if (Either.isLeft(payload)) return yield* drop("BadPayload", payload.left).pipe(Effect.as("dropped" as const))
        const now = yield* Clock.currentTimeMillis
        if (payload.right.timestamp > now + clockDriftMaxMs) {
          return yield* drop("ClockDrift", `proposal time ${payload.right.timestamp}, now ${now}`).pipe(Effect.as("dropped" as const))
        }
        const { handover, receiptIds, txHashes } = payload.right
        const handoverCheck = handover === undefined ? "ok" : yield* checkHandover(handover.epoch, handover.digest)
        if (handoverCheck !== "ok" && handoverCheck !== "wait") {
          return yield* drop("BadHandover", `proposal of view ${block.view}: ${handoverCheck}`).pipe(Effect.as("dropped" as const))
        }
        const unknown = txHashes.filter((h) => knownTx(h) === undefined)
        const missingReceipts = (ledger: LedgerState) =>
          receiptIds.filter((id) => !receiptBook.has(id) && !HashSet.has(ledger.receivedReceipts, id))
        const ledger = (yield* Ref.get(admission.view)).ledger
        if (unknown.length === 0 && missingReceipts(ledger).length === 0 && handoverCheck === "ok") return "feed"
        // Fetch what is missing off the seat's fiber, then offer the proposal again.
        yield* Effect.forkIn(
          Effect.gen(function* () {
            if (unknown.length > 0) {
              const fetched = yield* fetchTxs(input.peer, unknown)
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
            while (handover !== undefined) {
              const verdict = yield* checkHandover(handover.epoch, handover.digest)
              if (verdict === "ok") break
              if (verdict !== "wait" || (yield* Clock.currentTimeMillis) > deadline) {
                return yield* drop("BadHandover", `proposal of view ${block.view}: ${verdict === "wait" ? "this node's beacon has not elected that committee" : verdict}`)
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
    /** The ledger the receipts were ordered against (its open epoch decides which epoch receipts go). */
    let cachedLedger: unknown = undefined
    let cachedEntries: ReadonlyArray<C.TxId> = []
    /** The handover entry once the beacon elected the next committee (a proposal carries it until it commits). */
    let handover: { readonly epoch: number; readonly entry: C.TxId } | undefined
    const handoverEntries = Effect.gen(function* () {
      const next = current.committee.epoch + 1
      if (handover?.epoch !== next) {
        const elected = yield* options.elected(next)
        if (elected === undefined) return []
        handover = { epoch: next, entry: handoverEntry(elected) }
      }
      return [handover.entry]
    })
    const prepare = (s: ConsensusState, now: number): Effect.Effect<ConsensusState> =>
      Effect.zipWith(Ref.get(admission.view), handoverEntries, (v, handing) => {
        if (v.pool !== cachedPool || v.receipts !== cachedReceipts || v.ledger !== cachedLedger) {
          const receipts = receiptsToPropose(v.ledger, v.receipts, RECEIPTS_PER_BLOCK_MAX).map((r) => r.receiptId)
          const batch = takeBatch(v.pool, { ...limits, countMax: Math.min(limits.countMax, MAX_BLOCK_TRANSACTIONS - 1 - receipts.length) })
          cachedEntries = [...receipts.map(receiptEntry), ...batch.map((tx) => tx.hash)]
          cachedPool = v.pool
          cachedReceipts = v.receipts
          cachedLedger = v.ledger
        }
        return { ...s, mempool: [timestampEntry(Math.max(now, chainTimeMax(s) + 1)), ...handing, ...cachedEntries] }
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
        if (o._tag === "Broadcast" && o.message._tag === "Proposal" && o.message.block.proposer === current.config.self) return o.message.block
      }
      return undefined
    }

    // ---- outputs
    let timer: Fiber.RuntimeFiber<void> | undefined
    const armTimer = (view: C.View, durationMs: number) =>
      Effect.gen(function* () {
        if (timer !== undefined) yield* Fiber.interrupt(timer)
        timer = yield* Effect.forkIn(
          Effect.sleep(Duration.millis(durationMs)).pipe(
            Effect.zipRight(Queue.offer(inbox, { _tag: "Timer", epoch: current.committee.epoch, view })),
            Effect.asVoid
          ),
          scope
        )
      })

    /** A vote's record keeps the bytes of its block's transactions (this node checked them before voting). */
    const withVotedTransactions = (record: C.SafetyRecord, encoded: unknown): unknown => {
      if (record._tag !== "Voted" || record.block === undefined) return encoded
      const payload = parsePayload(record.block.payload)
      if (Either.isLeft(payload) || payload.right.txHashes.length === 0) return encoded
      const raw: Array<string> = []
      for (const hash of payload.right.txHashes) {
        const tx = knownTx(hash)
        if (tx !== undefined) raw.push(bytesToHex(tx.encoded))
      }
      return { ...(encoded as object), txs: raw }
    }

    const persist = (batch: ReadonlyArray<C.SafetyRecord>) =>
      Effect.gen(function* () {
        const { stream } = current
        const events = batch.map((record, i) => ({
          id: `${stream}:${revision + 1 + i}`,
          type: record._tag,
          data: withVotedTransactions(record, encodeRecord(record)),
          metadata: { shard, node: self, epoch: current.committee.epoch }
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
              onCommitted(o.block, o.qc, o.proof)
              yield* Queue.offer(commits, { block: o.block, qc: o.qc })
              break
            case "RequestBlock":
              yield* send(o.from, { _tag: "BlockRequest", blockHash: o.blockHash })
              break
          }
        }
        if (records.length > 0) yield* persist(records)
      })

    type StepInput = { readonly _tag: "Start" } | { readonly _tag: "Timer"; readonly view: C.View } | { readonly _tag: "Net"; readonly input: NetInput; readonly from: C.NodeIndex }
    const toStateInput = (input: StepInput): C.Input =>
      input._tag === "Net"
        ? { _tag: "Received", from: input.from, message: input.input.message }
        : input._tag === "Timer"
          ? { _tag: "TimerFired", view: input.view }
          : { _tag: "Start" }

    const scheduleWake = (at: number, now: number) =>
      Effect.forkIn(Effect.sleep(Duration.millis(Math.max(0, at - now))).pipe(Effect.zipRight(wake)), scope).pipe(Effect.asVoid)

    /** One input through the state machine (unless it would make a proposal that is not due yet). */
    const run = (input: StepInput) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const result = step(current.config, yield* prepare(state, now), toStateInput(input))
        const proposal = ownProposal(result.outputs)
        if (proposal !== undefined && input._tag === "Net") {
          const v = yield* Ref.get(admission.view)
          const idle = isIdleProposal(result.state, proposal) && v.pool.count === 0 && receiptsToPropose(v.ledger, v.receipts, 1).length === 0
          const due = lastProposalAt + (idle ? options.idleIntervalMs : blockIntervalMinMs)
          if (now < due) {
            deferred.push({ input: input.input, from: input.from })
            yield* scheduleWake(due, now)
            return
          }
        }
        if (proposal !== undefined || (input._tag === "Net" && input.input.message._tag === "Proposal")) lastProposalAt = now
        state = result.state
        yield* carryOut(result.outputs)
      })

    /** A block request answered from an epoch's tree, outside the state machine (the asker is not a member of it now). */
    const answerBlockRequest = (peer: PeerId, epoch: EpochSeat, tree: ConsensusState, blockHash: Hash32) => {
      const blocks = blocksFor(epoch.config, tree, blockHash)
      return blocks.length === 0
        ? Effect.void
        : network.send(peer, { _tag: "Consensus", shard, epoch: epoch.committee.epoch, message: { _tag: "BlockResponse", blocks } })
    }

    /** Frames of the next epoch, until this node reaches it. */
    let future: Array<NetInput> = []

    /** A frame of the current epoch: to the state machine as from its sender's seat; from outside the committee, only a block request. */
    const onNet = (input: NetInput) =>
      Effect.gen(function* () {
        const epoch = current.committee.epoch
        if (input.epoch < epoch) {
          if (previous !== undefined && input.epoch === previous.epoch.committee.epoch) yield* answerStraggler(input)
          return yield* drop("StaleEpoch", `epoch ${input.epoch} frame in epoch ${epoch}`)
        }
        if (input.epoch > epoch) {
          if (future.length < FUTURE_FRAMES_MAX) future.push(input)
          return yield* startCatchUp
        }
        const from = current.seatOf.get(input.peer)
        if (from === undefined) {
          if (input.message._tag !== "BlockRequest") return yield* drop("UnknownSender", `a ${input.message._tag} from peer ${input.peer}, not in epoch ${epoch}'s committee`)
          // Observers sync blocks too: answer from this node's tree.
          return yield* answerBlockRequest(input.peer, current, state, input.message.blockHash)
        }
        const verdict = yield* precheck(input, from)
        if (verdict === "feed") yield* run({ _tag: "Net", input, from })
      })

    /**
     * The epoch this node left, as it left it. The QC that commits a handover may form at one node only (the
     * next leader), which commits and moves on; if its next proposal is lost, the rest of the old committee
     * has no quorum left and too few peers past the handover to catch up from. So a node answers a straggler
     * of its last epoch: a block request from its final tree, a timeout with a timeout of its own carrying
     * its final high QC (which commits the handover there). Signing a timeout in an epoch it never votes in
     * again is safe.
     */
    let previous: { readonly epoch: EpochSeat; readonly state: ConsensusState; readonly answered: Set<string> } | undefined
    const answerStraggler = (input: NetInput) =>
      Effect.gen(function* () {
        const { epoch: old, state: last, answered } = previous!
        const seat = old.seatOf.get(input.peer)
        const oldSeat = old.config.self
        if (seat === undefined || oldSeat === OBSERVER) return
        const { message } = input
        const key = message._tag === "Timeout" ? `${input.peer}:${message.view}` : undefined
        if (message._tag === "BlockRequest") return yield* answerBlockRequest(input.peer, old, last, message.blockHash)
        if (message._tag !== "Timeout" || key === undefined || answered.has(key) || answered.size >= STRAGGLER_ANSWERS_MAX) return
        if (message.highQc.view >= last.highQc.view) return // it knows as much as this node: nothing to tell
        answered.add(key)
        const { committee, crypto, secretKey } = old.config
        const signature = crypto.sign(secretKey, timeoutDigest(shard, committee.epoch, message.view, last.highQc.view))
        const timeout: C.Timeout = { _tag: "Timeout", view: message.view, voter: oldSeat, signature, highQc: last.highQc, lastTc: last.lastTc }
        yield* network.send(input.peer, { _tag: "Consensus", shard, epoch: committee.epoch, message: timeout })
      })

    /** The ledger applied a handover: leave this epoch's chain, start the new committee's. */
    const handOver = Effect.gen(function* () {
      const ledger = yield* shardActor.state
      if (ledger.committee === null || ledger.committee.epoch <= current.committee.epoch) return
      const from = current.committee.epoch
      previous = { epoch: current, state, answered: new Set() }
      if (timer !== undefined) yield* Fiber.interrupt(timer)
      timer = undefined
      deferred.length = 0
      current = epochOf(ledger)
      const { missing, voted } = yield* resume(ledger)
      for (const tx of voted) txs.set(tx.hash, tx)
      for (const c of missing) yield* Queue.offer(commits, c)
      yield* Effect.logInfo(
        `shard ${shard}: epoch ${from} → ${current.committee.epoch} at height ${ledger.height}; ` +
          (current.config.self === OBSERVER ? "this node observes" : `this node holds seat ${current.config.self} of ${current.committee.members.length}`)
      )
      yield* run({ _tag: "Start" })
      const waiting = future
      future = []
      for (const f of waiting) yield* onNet(f)
    })

    const handle = (input: SeatInput) =>
      Effect.gen(function* () {
        switch (input._tag) {
          case "Wake": {
            wakeQueued = false
            const again = deferred.splice(0, deferred.length)
            for (const d of again) yield* run({ _tag: "Net", ...d })
            return
          }
          case "Net":
            if (!input.checked) netQueued--
            return yield* onNet(input)
          case "Timer":
            if (input.epoch !== current.committee.epoch) return
            return yield* run({ _tag: "Timer", view: input.view })
          case "Start":
            return yield* run({ _tag: "Start" })
          case "Handover":
            return yield* handOver
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
    /** The committee a committed handover names, once this node's beacon elected it (more than 2/3 of the stake checked it did). */
    const awaitElected = (epoch: number, digest: Hash32) =>
      Effect.gen(function* () {
        for (;;) {
          const elected = yield* options.elected(epoch)
          if (elected !== undefined) {
            if (committeeDigest(elected) !== digest) {
              return yield* Effect.dieMessage(`shard ${shard}: the committed handover to epoch ${epoch} names a committee this node's beacon did not elect`)
            }
            return elected
          }
          yield* Effect.sleep(Duration.millis(25))
        }
      })
    const awaitReceipts = (ids: ReadonlyArray<Hash32>) =>
      Effect.gen(function* () {
        while (ids.some((id) => !receiptBook.has(id))) yield* Effect.sleep(Duration.millis(25))
        return ids.map((id) => receiptBook.get(id)!)
      })

    /** One ledger block at a time, whether committed here or fetched by the catch-up. */
    const applying = yield* Effect.makeSemaphore(1)

    /** After the ledger applied a block: the pool, the books and the fetch cache follow; a handover restarts the seat. */
    const afterApplied = (state: LedgerState, block: Block) =>
      Effect.gen(function* () {
        applied++
        yield* Ref.update(admission.view, (v) => ({
          ...v,
          ledger: state,
          pool: reconcile(v.pool, state, block.transactions),
          receipts: HashMap.filter(v.receipts, (_, id) => !HashSet.has(state.receivedReceipts, id))
        }))
        for (const r of block.receipts) receiptBook.delete(r.receiptId)
        for (const tx of block.transactions) {
          txs.delete(tx.hash)
          recent.set(tx.hash, tx)
        }
        while (recent.size > RECENT_TXS_MAX) recent.delete(recent.keys().next().value!)
        if (block.committee !== undefined) yield* Queue.offer(inbox, { _tag: "Handover" })
      })

    const applyCommitted = (committed: Committed) => applying.withPermits(1)(applyOneCommitted(committed))
    const applyOneCommitted = ({ block, qc }: Committed) =>
      Effect.gen(function* () {
        const ledger = yield* shardActor.state
        if (block.height <= ledger.height) return
        // What an old committee committed after its handover is never applied (see certification.ts).
        if (block.epoch !== ledger.committee!.epoch) return
        if (block.height !== ledger.height + 1) {
          return yield* Effect.dieMessage(`shard ${shard}: committed block ${block.height} after ledger height ${ledger.height}`)
        }
        const payload = parsePayload(block.payload)
        if (Either.isLeft(payload)) return yield* Effect.dieMessage(`shard ${shard}: a committed payload is malformed: ${payload.left}`)
        const { timestamp, handover, receiptIds, txHashes } = payload.right
        const transactions = yield* awaitTransactions(txHashes)
        const next = handover === undefined ? undefined : yield* awaitElected(handover.epoch, handover.digest)
        const receipts = yield* awaitReceipts(creditableReceipts(receiptIds, (id) => HashSet.has(ledger.receivedReceipts, id)))
        const certificate = certificateOf(block, qc)
        const ledgerBlock = buildCertifiedBlock({
          chainId: ledger.chain!.chainId,
          shard,
          height: ledger.height + 1,
          parentHash: ledger.lastBlockHash,
          eventsRoot: ledger.lastEventsRoot,
          timestamp: Math.max(ledger.lastTimestamp, timestamp),
          proposer: ledger.committee!.members[block.proposer]!.address,
          transactions,
          receipts,
          certificate,
          committee: next
        })
        const reply = yield* shardActor.ask(new ApplyBlock({ block: ledgerBlock })).pipe(
          Effect.catchAll((e) => Effect.dieMessage(`shard ${shard}: the ledger refused committed block ${block.height}: ${e.message}`))
        )
        yield* afterApplied(reply.state, ledgerBlock)
      })

    // ---- catch-up: a node that fell an epoch behind (its peers' frames are of a later epoch) can no longer
    // follow its old committee's chain, which its peers dropped. It applies the ledger blocks they applied
    // instead, each answer only on its commit proof (`domain/chain/catchUp.ts`: the certified child of the
    // next view, checked against the committee this node's ledger holds), never on a count of answers: one
    // honest peer with a proof is enough, and a peer without one is refused. Each answer is bound to the peer
    // asked and a random request id. The ledger checks each block's certificate and handover as it would its own.
    type LedgerAnswer = { readonly blocks: ReadonlyArray<Block>; readonly proof: CommitProof }
    const ledgerRequests = makeRequests<LedgerAnswer>({ blocks: [], proof: [] })
    const askBlocks = (peer: PeerId, fromHeight: number) =>
      ledgerRequests.ask(peer, (requestId) => network.send(peer, { _tag: "LedgerBlocksRequest", shard, requestId, fromHeight }))

    let catchingUp = false
    const catchUp = Effect.gen(function* () {
      yield* Effect.sleep(Duration.millis(CATCH_UP_DELAY_MS)) // a node about to apply the handover itself needs no help
      for (;;) {
        const ledger = yield* shardActor.state
        if (!future.some((frame) => frame.epoch > ledger.committee!.epoch)) return // it got there on its own
        const fromHeight = ledger.height + 1
        const answers = yield* Effect.forEach(network.peers, (peer) => Effect.map(askBlocks(peer, fromHeight), (a) => ({ peer, ...a })), {
          concurrency: "unbounded"
        })
        // The longest proven answer; how many distinct peers sent the same last block is only logged.
        let best: { readonly blocks: ReadonlyArray<Block>; readonly proof: CommitProof } | undefined
        const agreeing = new Map<string, Set<PeerId>>()
        for (const a of answers) {
          const checked = verifyCatchUp(ledger.committee!, shard, fromHeight, a.blocks, a.proof)
          if (Either.isLeft(checked)) {
            catchUpRefused[checked.left.reason]++
            yield* drop("UnprovenCatchUp", `peer ${a.peer}: ${checked.left.message}`)
            continue
          }
          if (a.blocks.length === 0) continue
          const tip = a.blocks[a.blocks.length - 1]!.hash
          agreeing.set(tip, (agreeing.get(tip) ?? new Set()).add(a.peer))
          if (best === undefined || a.blocks.length > best.blocks.length) best = a
        }
        if (best === undefined) return
        let progressed = false
        for (const block of best.blocks) {
          const ok = yield* applying.withPermits(1)(
            Effect.gen(function* () {
              const now = yield* shardActor.state
              if (block.header.height !== now.height + 1) return block.header.height <= now.height
              return yield* shardActor.ask(new ApplyBlock({ block })).pipe(
                Effect.flatMap((reply) => Effect.as(afterApplied(reply.state, block), true)),
                Effect.catchAll((e) => Effect.as(Effect.logWarning(`shard ${shard}: a caught-up block ${block.header.height} was refused: ${e.message}`), false))
              )
            })
          )
          if (!ok) return
          progressed = true
        }
        if (!progressed) return
        // This node can now prove the last block to a peer behind it, as its peer proved it here.
        const last = best.blocks[best.blocks.length - 1]!
        keepProof(last.certificate!.blockHash, last.committee !== undefined, best.proof)
        const peers = agreeing.get(last.hash)?.size ?? 0
        yield* Effect.logInfo(`shard ${shard}: caught up to height ${last.header.height} from peers' ledgers (proven; ${peers} peer(s) sent it)`)
      }
    }).pipe(Effect.ensuring(Effect.sync(() => (catchingUp = false))))
    const startCatchUp = Effect.suspend(() => {
      if (catchingUp) return Effect.void
      catchingUp = true
      return Effect.forkIn(catchUp, scope).pipe(Effect.asVoid)
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
      `shard ${shard}: BFT epoch ${current.committee.epoch}, ` +
        (current.config.self === OBSERVER ? "observing" : `seat ${current.config.self} of ${current.committee.members.length}`) +
        `, view ${state.view}, committed height ${state.committedHeight}, ledger height ${ledger0.height}`
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
      stats: Effect.sync(() => ({
        dropped: { ...dropped },
        catchUpRefused: { ...catchUpRefused },
        applied,
        view: state.view,
        committedHeight: state.committedHeight,
        epoch: current.committee.epoch,
        member: current.config.self !== OBSERVER
      })),
      safety: Effect.sync(() => safetyOf(state))
    }
    return seat
  })

/**
 * Requests to peers, each answered only by the peer asked with the request's
 * id (random: a peer cannot guess another's). An answer that does not come
 * within the fetch timeout counts as `none` (the peer is down or has nothing).
 */
const makeRequests = <A>(none: A) => {
  const pending = new Map<string, Deferred.Deferred<A>>()
  const keyOf = (peer: PeerId, requestId: number) => `${peer}:${requestId}`
  return {
    ask: (peer: PeerId, send: (requestId: number) => Effect.Effect<void>): Effect.Effect<A> =>
      Effect.gen(function* () {
        const requestId = (yield* Random.nextIntBetween(0, 2 ** 21)) * 2 ** 32 + (yield* Random.nextIntBetween(0, 2 ** 32))
        const key = keyOf(peer, requestId)
        const reply = yield* Deferred.make<A>()
        pending.set(key, reply)
        yield* send(requestId)
        return yield* Deferred.await(reply).pipe(
          Effect.timeout(Duration.millis(TX_FETCH_TIMEOUT_MS)),
          Effect.orElseSucceed(() => none),
          Effect.ensuring(Effect.sync(() => pending.delete(key)))
        )
      }),
    /** Whether `peer` was asked with `requestId` and the request still waits. */
    answer: (peer: PeerId, requestId: number, value: A): Effect.Effect<boolean> => {
      const reply = pending.get(keyOf(peer, requestId))
      return reply === undefined ? Effect.succeed(false) : Deferred.succeed(reply, value)
    }
  }
}

/** A consensus block's proposal time (its payload's first entry); 0 for genesis. */
const timestampOf = (block: C.Block): number => {
  const first = block.payload[0]
  if (first === undefined || !first.startsWith("t:")) return 0
  const ms = Number(first.slice(2))
  return Number.isSafeInteger(ms) ? ms : 0
}
