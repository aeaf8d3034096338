/**
 * The one-process chain node: a ShardActor and a block producer (or, on a
 * BFT chain, a seat) per shard — the beacon (shard 0, a block every
 * `economics.beaconIntervalMs` even when idle: the epoch clock), each
 * transfer shard and the AI shard (S + 1) — the chain index (which
 * also relays cross-shard receipts), and the ChainNode operations the RPC
 * server serves.
 */
import { Duration, Effect, Either, HashMap, Layer, Option, Queue } from "effect"
import { decodeForAdmission } from "../../domain/chain/admission.js"
import type { AdmissionRejected } from "../../domain/chain/admission.js"
import type { Block } from "../../domain/chain/block.js"
import { allShardIds, genesisCommand, genesisConfigHash } from "../../domain/chain/genesis.js"
import type { GenesisConfig } from "../../domain/chain/genesis.js"
import { bytesToHex, hexToBytes } from "../../domain/chain/hex.js"
import { devProposerKey } from "../../domain/chain/keys.js"
import type { Address, PrivateKey } from "../../domain/chain/keys.js"
import { accountOf } from "../../domain/chain/ledger.js"
import { electedCommittee } from "../../domain/chain/ledgerState.js"
import { pendingOf } from "../../domain/chain/mempool.js"
import type { Mempool } from "../../domain/chain/mempool.js"
import { BEACON_SHARD, shardKindOf, shardOf } from "../../domain/chain/sharding.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { amountOf } from "../../domain/chain/transaction.js"
import { homeShardOf } from "../../domain/chain/txRules.js"
import { decodeEventOf } from "../../domain/streamEvents.js"
import type { Transaction } from "../../domain/chain/transaction.js"
import { makeSingleProducer } from "../../actors/ConsensusActor.js"
import type { ShardConsensus } from "../../actors/ConsensusActor.js"
import { makeShardActor, shardStream } from "../../actors/ShardActor.js"
import { makeBftSeat } from "../../actors/BftSeat.js"
import type { BftSeat } from "../../actors/BftSeat.js"
import type { ConsensusNetwork } from "../../infra/network/ConsensusNetwork.js"
import { EventStore } from "../../infra/eventstore/EventStore.js"
import {
  AccountInfo,
  BlockView,
  InvalidRequest,
  NodeStatus,
  NotFound,
  ShardStatus,
  SubmitResult,
  TransactionRejected,
  TxView,
  CommitteeMemberView,
  CommitteeView,
  RegistryEntryView,
  ValidatorsView
} from "../api/NodeRpcs.js"
import { VERSION } from "../version.js"
import { makeChainIndex } from "./ChainIndex.js"
import { refuseOutdatedDataDir } from "./dataDirVersion.js"
import type { ChainIndex, TxLocation } from "./ChainIndex.js"
import { ChainNode } from "./ChainNode.js"
import type { ChainNodeShape } from "./ChainNode.js"

/** A validator of a BFT chain: its keys, and the network to its peers (its seats follow the committees its ledgers name). */
export interface BftNodeOptions {
  readonly network: ConsensusNetwork
  /** The validator address of each network peer id (default: the genesis validators, in order). */
  readonly roster?: ReadonlyArray<Address> | undefined
  readonly blsSecretKey: Uint8Array
  /** A transfer shard's block interval while idle (default 2000 ms); the beacon's is `beaconIntervalMs`. */
  readonly idleIntervalMs?: number | undefined
  /** The pacemaker's first view timeout (default 3 × the shard's idle interval; never under 2 ×). */
  readonly baseTimeoutMs?: number | undefined
}

export const TRANSFER_IDLE_INTERVAL_MS_DEFAULT = 2_000

export interface ChainNodeOptions {
  readonly genesis: GenesisConfig
  /** Run each shard's BFT seat of this validator instead of a single producer (the genesis must name validators). */
  readonly bft?: BftNodeOptions | undefined
  /** The key each shard's producer signs blocks with (default: the devnet's deterministic keys). */
  readonly proposerKey?: ((shard: ShardId) => PrivateKey) | undefined
  /** How long `tx.submit` with `wait` waits for the block before answering "pending". */
  readonly inclusionWait?: Duration.DurationInput | undefined
}

const ADDRESS = /^0x[0-9a-f]{40}$/
const HASH = /^0x[0-9a-f]{64}$/
const DEFAULT_INCLUSION_WAIT: Duration.DurationInput = "60 seconds"

const rejected = (e: AdmissionRejected) => new TransactionRejected({ reason: e.reason, detail: e.detail })


const findPending = (pool: Mempool, hash: string): Transaction | undefined => {
  for (const queue of HashMap.values(pool.senders)) {
    const tx = queue.txs.find((t) => t.hash === hash)
    if (tx !== undefined) return tx
  }
  return undefined
}

const txView = (tx: Transaction, shard: number, location: TxLocation | undefined) =>
  new TxView({
    hash: tx.hash,
    shard,
    status: location?.status ?? "pending",
    from: tx.sender,
    ...(tx.body.payload.kind === "transfer" ? { to: tx.body.payload.to } : {}),
    kind: tx.body.payload.kind,
    nonce: tx.body.nonce,
    fee: tx.body.fee,
    amount: amountOf(tx.body.payload),
    raw: bytesToHex(tx.encoded),
    ...(location === undefined
      ? {}
      : {
          blockHeight: location.height,
          ...(location.reason === undefined ? {} : { reason: location.reason }),
          ...(location.receiptId === undefined
            ? {}
            : { receiptId: location.receiptId, receiptDelivered: location.receiptDelivered ?? false })
        })
  })

export const makeChainNode = (options: ChainNodeOptions) => Effect.map(makeChainNodeWithSeats(options), ({ node }) => node)

/** The node and, on a BFT chain, its seats by shard (tests read their stats and safety state). */
export const makeChainNodeWithSeats = (options: ChainNodeOptions) =>
  Effect.gen(function* () {
    const { genesis } = options
    const store = yield* EventStore
    const proposerKey = options.proposerKey ?? devProposerKey
    // Where a pending transaction may wait: every shard that takes transactions (the beacon's validator.* too).
    const shards = allShardIds(genesis)

    const seats = new Map<number, ShardConsensus>()
    let servedIndex: ChainIndex | undefined
    const bftSeats = new Map<number, BftSeat>()
    const bft = options.bft
    if (bft !== undefined && genesis.validators === undefined) return yield* Effect.dieMessage("a BFT node needs a genesis with validators")
    if (bft === undefined && genesis.validators !== undefined) {
      return yield* Effect.dieMessage("this genesis names validators: its blocks come from BFT consensus, not a single producer")
    }
    // A data dir made by an older version would stall or crash the shards below: refused, with what to do.
    yield* refuseOutdatedDataDir(genesis)
    const beaconIntervalMs = genesis.economics.beaconIntervalMs
    const transferIdleMs = bft?.idleIntervalMs ?? TRANSFER_IDLE_INTERVAL_MS_DEFAULT
    for (const shard of allShardIds(genesis)) {
      const actor = yield* makeShardActor(shard)
      const state = yield* actor.state
      if (state.chain === null) {
        yield* actor.ask(genesisCommand(genesis, shard)).pipe(Effect.orDie)
        yield* Effect.logInfo(`shard ${shard}: genesis applied`)
      } else {
        yield* Effect.logInfo(`shard ${shard}: resumed at height ${state.height}`)
      }
      if (bft !== undefined) {
        const idleMs = shard === BEACON_SHARD ? beaconIntervalMs : transferIdleMs
        const seat = yield* makeBftSeat({
          shard,
          shardActor: actor,
          network: bft.network,
          roster: bft.roster ?? genesis.validators!.map((v) => v.address),
          // Lazily: the beacon's own seat asks while it is being made.
          elected: (epoch) =>
            Effect.suspend(() => {
              const beacon = seats.get(BEACON_SHARD)
              return beacon === undefined ? Effect.succeed(undefined) : Effect.map(beacon.ledger, (l) => electedCommittee(l, epoch, shard))
            }),
          // The index is made after the seats (it delivers receipts to them): look it up when a peer asks.
          readBlocks: (fromHeight, max) =>
            Effect.suspend(() =>
              servedIndex === undefined
                ? Effect.succeed([])
                : Effect.gen(function* () {
                    const blocks: Array<Block> = []
                    for (let height = fromHeight; blocks.length < max; height++) {
                      const revision = yield* servedIndex!.block(shard, height)
                      if (Option.isNone(revision)) break
                      blocks.push(yield* readBlock(shard, revision.value))
                    }
                    return blocks
                  })
            ),
          // Each block read once, however many of the hashes it holds (a fetch names a whole block's).
          readTransactions: (hashes) =>
            Effect.suspend(() => {
              const index = servedIndex
              if (index === undefined) return Effect.succeed([])
              return Effect.gen(function* () {
                const wanted = new Set<string>(hashes)
                const revisions = new Set<number>()
                for (const hash of hashes) {
                  const location = yield* index.transaction(hash)
                  if (Option.isSome(location) && location.value.shard === shard) revisions.add(location.value.blockRevision)
                }
                const blocks = yield* Effect.forEach([...revisions], (revision) => readBlock(shard, revision))
                return blocks.flatMap((b) => b.transactions.filter((tx) => wanted.has(tx.hash)))
              })
            }),
          blsSecretKey: bft.blsSecretKey,
          idleIntervalMs: idleMs,
          // An idle leader holds its proposal up to the idle interval: the others must wait longer than that.
          baseTimeoutMs: Math.max(bft.baseTimeoutMs ?? 3 * idleMs, 2 * idleMs)
        })
        seats.set(shard, seat)
        bftSeats.set(shard, seat)
        continue
      }
      const producer = yield* makeSingleProducer({
        shard,
        shardActor: actor,
        proposerKey: proposerKey(shard),
        // Transactions never reach the beacon (they go to the sender's transfer shard): its blocks are the epoch clock.
        ...(shard === BEACON_SHARD ? { heartbeat: Duration.millis(genesis.economics.beaconIntervalMs) } : {})
      })
      seats.set(shard, producer)
    }
    const seat = (shard: number): ShardConsensus => seats.get(shard)!

    const index = yield* makeChainIndex((receipt) => seat(receipt.destShard).deliverReceipt(receipt))
    servedIndex = index
    if (bft !== undefined) {
      // Frames from peers to their shard's seat (a frame for a shard this chain lacks is dropped).
      yield* Effect.forkScoped(
        Queue.take(bft.network.inbound).pipe(
          Effect.flatMap((envelope) => bftSeats.get(envelope.message.shard)?.receive(envelope) ?? Effect.void),
          Effect.forever
        )
      )
    }

    const parseAddress = (text: string) => {
      const address = text.toLowerCase()
      return ADDRESS.test(address)
        ? Effect.succeed(address as Address)
        : Effect.fail(new InvalidRequest({ detail: `not an address (0x + 40 hex digits): ${text}` }))
    }

    const readBlock = (shard: number, revision: number) =>
      store.readStream(shardStream(shard), { from: revision, limit: 1 }).pipe(
        Effect.flatMap((events) => {
          const stored = events[0]
          const decoded = stored === undefined ? Either.left("no such event") : decodeEventOf("shard", stored.type, stored.data)
          return Either.isRight(decoded) && decoded.right._tag === "BlockApplied"
            ? Effect.succeed(decoded.right.block)
            : Effect.dieMessage(`shard-${shard}@${revision} is not a readable BlockApplied${Either.isLeft(decoded) ? `: ${decoded.left}` : ""}`)
        }),
        Effect.orDie // the index only points at BlockApplied events the ledger wrote
      )

    const genesisHash = genesisConfigHash(genesis)
    const node: ChainNodeShape = {
      status: Effect.gen(function* () {
        // Every shard in id order (the beacon, the transfer shards, the AI shard), each with its kind.
        const statuses = yield* Effect.forEach(allShardIds(genesis), (shard) =>
          Effect.all([seat(shard).ledger, seat(shard).pending]).pipe(
            Effect.map(
              ([ledger, pool]) =>
                new ShardStatus({
                  shard,
                  kind: shardKindOf(shard, genesis.transferShards),
                  height: ledger.height,
                  lastBlockHash: ledger.lastBlockHash,
                  pendingTransactions: pool.count,
                  ...(shard === BEACON_SHARD ? { epoch: ledger.epoch } : {})
                })
            )
          )
        )
        return new NodeStatus({
          chainId: genesis.chainId,
          genesisHash,
          version: VERSION,
          shards: statuses,
          eventsPosition: yield* index.position
        })
      }),

      ledger: (shard) =>
        seats.has(shard)
          ? seat(shard).ledger
          : Effect.fail(new InvalidRequest({ detail: `no shard ${shard}: shards are 0 (the beacon) to ${genesis.transferShards + 1} (the AI shard)` })),

      account: (text, on) =>
        Effect.gen(function* () {
          const address = yield* parseAddress(text)
          if (on !== undefined && !seats.has(on)) {
            return yield* new InvalidRequest({
              detail: `no shard ${on}: shards are 0 (the beacon) to ${genesis.transferShards + 1} (the AI shard)`
            })
          }
          const shard = on ?? shardOf(address, genesis.transferShards)
          const ledger = yield* seat(shard).ledger
          const pool = yield* seat(shard).pending
          const account = accountOf(ledger, address)
          return new AccountInfo({
            address,
            shard,
            balance: account.balance,
            nonce: account.nonce,
            pendingNonce: account.nonce + BigInt(pendingOf(pool, address).count)
          })
        }),

      validators: (asked) =>
        Effect.gen(function* () {
          if (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 0)) {
            return yield* new InvalidRequest({ detail: `epoch must be a whole number ≥ 0, got ${asked}` })
          }
          const beacon = yield* seat(BEACON_SHARD).ledger
          const epoch = asked ?? beacon.epoch
          const registry = Array.from(beacon.registry)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(
              ([address, v]) =>
                new RegistryEntryView({
                  address,
                  blsPublicKey: v.blsPublicKey,
                  ...(v.endpoint === null ? {} : { endpoint: v.endpoint }),
                  stake: v.stake,
                  genesisStake: v.genesisStake,
                  beaconBalance: accountOf(beacon, address).balance,
                  leaving: v.leaving
                })
            )
          const committees = allShardIds(genesis).flatMap((shard) => {
            const c = electedCommittee(beacon, epoch, shard)
            return c === undefined
              ? []
              : [
                  new CommitteeView({
                    shard: c.shard,
                    epoch: c.epoch,
                    members: c.members.map((m) => new CommitteeMemberView({ address: m.address, stake: m.stake }))
                  })
                ]
          })
          return new ValidatorsView({ epoch: beacon.epoch, committeesEpoch: epoch, registry, committees })
        }),

      submit: (raw, wait) =>
        Effect.gen(function* () {
          const bytes = hexToBytes(raw.toLowerCase())
          if (Either.isLeft(bytes)) {
            return yield* new TransactionRejected({ reason: "Malformed", detail: `raw is not 0x-hex: ${bytes.left.detail}` })
          }
          const tx = yield* Either.mapLeft(decodeForAdmission(bytes.right), rejected)
          const shard = homeShardOf(tx, genesis.transferShards)
          yield* seat(shard).submit(tx).pipe(Effect.mapError(rejected))
          if (!wait) return new SubmitResult({ hash: tx.hash, shard, status: "pending" })
          const location = yield* index.awaitTransaction(tx.hash).pipe(
            Effect.timeout(options.inclusionWait ?? DEFAULT_INCLUSION_WAIT),
            Effect.option
          )
          return Option.match(location, {
            onNone: () => new SubmitResult({ hash: tx.hash, shard, status: "pending" }),
            onSome: (l) => new SubmitResult({ hash: tx.hash, shard, status: l.status, blockHeight: l.height })
          })
        }),

      transaction: (hash) =>
        Effect.gen(function* () {
          const h = hash.toLowerCase()
          if (!HASH.test(h)) return yield* new InvalidRequest({ detail: `not a transaction hash (0x + 64 hex digits): ${hash}` })
          const location = yield* index.transaction(h)
          if (Option.isSome(location)) {
            const block = yield* readBlock(location.value.shard, location.value.blockRevision)
            const tx = block.transactions.find((t) => t.hash === h)
            if (tx !== undefined) return txView(tx, location.value.shard, location.value)
          }
          for (const shard of shards) {
            const tx = findPending(yield* seat(shard).pending, h)
            if (tx !== undefined) return txView(tx, shard, undefined)
          }
          return yield* new NotFound({ what: "transaction", id: h })
        }),

      block: (shard, height) =>
        Effect.gen(function* () {
          if (!seats.has(shard)) {
            return yield* new InvalidRequest({ detail: `no shard ${shard}; this chain has shards ${[...seats.keys()].join(", ")}` })
          }
          const revision = yield* index.block(shard, height)
          if (Option.isNone(revision)) return yield* new NotFound({ what: "block", id: `${shard}/${height}` })
          const block = yield* readBlock(shard, revision.value)
          const h = block.header
          return new BlockView({
            shard,
            height: h.height,
            hash: block.hash,
            parentHash: h.parentHash,
            txRoot: h.txRoot,
            receiptRoot: h.receiptRoot,
            eventsRoot: h.eventsRoot,
            proposer: h.proposer,
            timestamp: h.timestamp,
            transactions: block.transactions.map((t) => t.hash),
            receipts: block.receipts.map((r) => r.receiptId)
          })
        })
    }
    return { node, seats: bftSeats as ReadonlyMap<number, BftSeat> }
  })

export const ChainNodeLive = (options: ChainNodeOptions) => Layer.scoped(ChainNode, makeChainNode(options))
