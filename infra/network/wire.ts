/**
 * What validators send each other, as Schemas: chained HotStuff's messages
 * (`domain/consensus/types.ts`), transaction gossip and transaction fetch,
 * ledger catch-up, each tagged with its shard. Bytes travel as 0x-hex, so every message has a
 * JSON encoding a WebSocket transport can carry; the in-memory network can
 * round-trip through it too. The same schemas encode the safety records a
 * seat persists in its `consensus-{shard}-{node}` stream.
 *
 * Collections are bounded: a frame naming more than a block can hold is
 * malformed, dropped at decoding.
 */
import { Schema } from "effect"
import { BytesHex } from "../../domain/chain/bftCertificate.js"
import { BftCertificate } from "../../domain/chain/bftCertificate.js"
import { Block as LedgerBlock } from "../../domain/chain/block.js"
import { COMMIT_PROOF_MAX } from "../../domain/chain/catchUp.js"
import { Hash32 } from "../../domain/chain/hash.js"
import { ShardId } from "../../domain/chain/sharding.js"
import type * as C from "../../domain/consensus/types.js"

const Int = Schema.Int.pipe(Schema.nonNegative())
/** Most payload entries, transactions or ids in one frame. */
export const WIRE_ITEMS_MAX = 8192
/** Most blocks in one sync response. */
export const WIRE_BLOCKS_MAX = 64

const QuorumCertificate = Schema.Struct({ view: Int, blockHash: Hash32, signers: BytesHex, signature: BytesHex })
const TimeoutCertificate = Schema.Struct({
  view: Int,
  signers: BytesHex,
  /** One high-QC view per signer, in bitmap order: the 2-chain voting rule reads them. */
  highQcViews: Schema.Array(Int).pipe(Schema.maxItems(WIRE_ITEMS_MAX)),
  signature: BytesHex
})
const Block = Schema.Struct({
  hash: Hash32,
  shard: ShardId,
  epoch: Int,
  view: Int,
  height: Int,
  parentHash: Hash32,
  justify: QuorumCertificate,
  proposer: Int,
  payload: Schema.Array(Schema.String).pipe(Schema.maxItems(WIRE_ITEMS_MAX))
})

const Proposal = Schema.TaggedStruct("Proposal", { block: Block, tc: Schema.UndefinedOr(TimeoutCertificate) })
const Vote = Schema.TaggedStruct("Vote", { view: Int, blockHash: Hash32, voter: Int, signature: BytesHex })
const Timeout = Schema.TaggedStruct("Timeout", {
  view: Int,
  voter: Int,
  signature: BytesHex,
  highQc: QuorumCertificate,
  lastTc: Schema.UndefinedOr(TimeoutCertificate)
})
const BlockRequest = Schema.TaggedStruct("BlockRequest", { blockHash: Hash32 })
const BlockResponse = Schema.TaggedStruct("BlockResponse", { blocks: Schema.Array(Block).pipe(Schema.maxItems(WIRE_BLOCKS_MAX)) })

export const ConsensusMessage: Schema.Schema<C.Message, unknown> = Schema.Union(
  Proposal,
  Vote,
  Timeout,
  BlockRequest,
  BlockResponse
) as never

/** A HotStuff message of one shard's committee of one epoch. */
export const ConsensusFrame = Schema.TaggedStruct("Consensus", { shard: ShardId, epoch: Int, message: ConsensusMessage })
/** Signed transactions (RLP) gossiped to the shard's committee by the node that admitted them. */
export const TxGossip = Schema.TaggedStruct("Txs", {
  shard: ShardId,
  raw: Schema.Array(BytesHex).pipe(Schema.maxItems(WIRE_ITEMS_MAX))
})
/** Ask a peer for transactions by hash (a proposal names ones this node never saw). */
export const TxRequest = Schema.TaggedStruct("TxRequest", {
  shard: ShardId,
  requestId: Int,
  ids: Schema.Array(Hash32).pipe(Schema.maxItems(WIRE_ITEMS_MAX))
})
/** The ones of them the peer has (possibly none). */
export const TxResponse = Schema.TaggedStruct("TxResponse", {
  shard: ShardId,
  requestId: Int,
  raw: Schema.Array(BytesHex).pipe(Schema.maxItems(WIRE_ITEMS_MAX))
})

/** Most ledger blocks in one catch-up response. */
export const LEDGER_BLOCKS_PER_RESPONSE = 16
/** Ask a peer for a shard's ledger blocks from a height on: how a node that fell an epoch behind catches up. */
export const LedgerBlocksRequest = Schema.TaggedStruct("LedgerBlocksRequest", { shard: ShardId, requestId: Int, fromHeight: Int })
/**
 * The certified ledger blocks the peer applied from that height (possibly none), up to one it can prove
 * committed, and that proof (`domain/chain/catchUp.ts`: the certificates from its child to a direct child of the next view).
 */
export const LedgerBlocksResponse = Schema.TaggedStruct("LedgerBlocksResponse", {
  shard: ShardId,
  requestId: Int,
  blocks: Schema.Array(LedgerBlock).pipe(Schema.maxItems(LEDGER_BLOCKS_PER_RESPONSE)),
  proof: Schema.Array(BftCertificate).pipe(Schema.maxItems(COMMIT_PROOF_MAX))
})

export const WireMessage = Schema.Union(ConsensusFrame, TxGossip, TxRequest, TxResponse, LedgerBlocksRequest, LedgerBlocksResponse)
export type WireMessage = typeof WireMessage.Type

/** A JSON frame and back: what a transport between processes carries. */
export const WireJson = Schema.parseJson(WireMessage)
export const encodeWire = Schema.encodeSync(WireJson)
export const decodeWire = Schema.decodeUnknownEither(WireJson)

// ---------------------------------------------------------------- the consensus stream's records

const Voted = Schema.TaggedStruct("Voted", { view: Int, blockHash: Hash32, block: Schema.optional(Block) })
const TimedOut = Schema.TaggedStruct("TimedOut", { view: Int })
const Locked = Schema.TaggedStruct("Locked", { qc: QuorumCertificate })
const CommitProof = Schema.Struct({ child: Block, qc: QuorumCertificate })
const Committed = Schema.TaggedStruct("Committed", { block: Block, qc: QuorumCertificate, proof: Schema.optional(CommitProof) })

export const SafetyRecord: Schema.Schema<C.SafetyRecord, unknown> = Schema.Union(Voted, TimedOut, Locked, Committed) as never
export const encodeRecord = Schema.encodeSync(SafetyRecord)
export const decodeRecord = Schema.decodeUnknownSync(SafetyRecord)
