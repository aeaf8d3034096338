/**
 * Blocks. A header commits to its transactions (txRoot), the receipts it
 * delivers from other shards (receiptRoot) and, with deferred execution, the
 * events produced by executing its PARENT (eventsRoot): a proposer can sign a
 * block before executing it, and a replayed event stream can be checked
 * against signed headers.
 *
 *   blockHash = keccak256(rlp([chainId, shard, height, parentHash, txRoot,
 *                              receiptRoot, eventsRoot, proposer, timestamp]))
 *
 * A single-producer chain's proposer signs blockHash. A BFT chain's blocks
 * carry instead the quorum certificate of the consensus block they were made
 * from (`certificate`, checked by `certification.ts` against the committee).
 */
import { Either, Schema } from "effect"
import { Hash32, hashBytes, keccakHex } from "./hash.js"
import { bytesToHex, fixedHex, hexToBytes } from "./hex.js"
import { Address, addressBytes, PUBLIC_KEY_BYTES, PublicKey, SIGNATURE_BYTES, verifyDigest, type PrivateKey } from "./keys.js"
import { merkleRoot } from "./merkle.js"
import { BftCertificate } from "./bftCertificate.js"
import { ShardCommittee } from "./committees.js"
import { CrossShardReceipt, receiptLeaf } from "./receipt.js"
import { encodeRlp } from "./rlp.js"
import { ShardId } from "./sharding.js"
import { TransactionFromHex, Uint256, type Transaction } from "./transaction.js"

/** Bounds a block's execution time and size; the mempool batch is capped below these. */
export const MAX_BLOCK_TRANSACTIONS = 4096
export const MAX_BLOCK_RECEIPTS = 8192

export const Height = Schema.Int.pipe(Schema.nonNegative())
/** Milliseconds since the epoch, from the proposer's Clock (never read in `domain/`). */
export const TimestampMs = Schema.Int.pipe(Schema.nonNegative())
export const PublicKeyHex = fixedHex(PUBLIC_KEY_BYTES)
export const SignatureHex = fixedHex(SIGNATURE_BYTES)

export class BlockHeader extends Schema.Class<BlockHeader>("BlockHeader")({
  chainId: Uint256,
  shard: ShardId,
  height: Height,
  parentHash: Hash32,
  txRoot: Hash32,
  receiptRoot: Hash32,
  eventsRoot: Hash32,
  proposer: Address,
  timestamp: TimestampMs
}) {}

export const blockHash = (h: BlockHeader): Hash32 =>
  keccakHex(
    encodeRlp([
      h.chainId,
      BigInt(h.shard),
      BigInt(h.height),
      hashBytes(h.parentHash),
      hashBytes(h.txRoot),
      hashBytes(h.receiptRoot),
      hashBytes(h.eventsRoot),
      addressBytes(h.proposer),
      BigInt(h.timestamp)
    ])
  )

/** The whole block; its encoded form (transactions as signed-RLP hex) is what `BlockApplied` stores. */
// Headers are immutable once made, so their hash can be kept beside them.
const headerHashes = new WeakMap<BlockHeader, Hash32>()

export class Block extends Schema.Class<Block>("Block")({
  header: BlockHeader,
  /** A single producer's key and signature over the header; absent on BFT blocks. */
  proposerPublicKey: Schema.optionalWith(PublicKeyHex, { exact: true }),
  signature: Schema.optionalWith(SignatureHex, { exact: true }),
  transactions: Schema.Array(TransactionFromHex),
  receipts: Schema.Array(CrossShardReceipt),
  /** A BFT block's quorum certificate; absent on single-producer blocks. */
  certificate: Schema.optionalWith(BftCertificate, { exact: true }),
  /** A handover block's next committee (its payload names the digest; see certification.ts). */
  committee: Schema.optionalWith(ShardCommittee, { exact: true })
}) {
  /** Memoized per header object: producers, ledgers and indexes ask for it many times. */
  get hash(): Hash32 {
    let hash = headerHashes.get(this.header)
    if (hash === undefined) headerHashes.set(this.header, (hash = blockHash(this.header)))
    return hash
  }
}

export const txRootOf = (txs: ReadonlyArray<Transaction>): Hash32 => merkleRoot(txs.map((tx) => hashBytes(tx.hash)))
export const receiptRootOf = (receipts: ReadonlyArray<CrossShardReceipt>): Hash32 => merkleRoot(receipts.map(receiptLeaf))

export class BlockRejected extends Schema.TaggedError<BlockRejected>()("BlockRejected", {
  reason: Schema.Literal(
    "GenesisMissing",
    "WrongChain",
    "WrongShard",
    "WrongHeight",
    "WrongParent",
    "TimestampBeforeParent",
    "WrongEventsRoot",
    "ProposerKeyMismatch",
    "BadProposerSignature",
    "TooManyTransactions",
    "TooManyReceipts",
    "WrongTxRoot",
    "WrongReceiptRoot",
    "ReceiptNotForThisShard",
    "ReceiptFromUnknownShard",
    "ReceiptIdMismatch",
    // an amount or purpose the receipt's route does not allow (`receiptRouteRefusal` in ledger.ts)
    "BadReceipt",
    "CertificateMissing",
    "BadCertificate",
    "UnexpectedSignature"
  ),
  detail: Schema.String
}) {
  override get message(): string {
    return `block rejected, ${this.reason}: ${this.detail}`
  }
}

const reject = (reason: BlockRejected["reason"], detail: string) => Either.left(new BlockRejected({ reason, detail }))

export interface BuildBlockParams {
  readonly chainId: bigint
  readonly shard: ShardId
  readonly height: number
  readonly parentHash: Hash32
  /** Root of the events produced by executing the parent block. */
  readonly eventsRoot: Hash32
  readonly timestamp: number
  readonly transactions: ReadonlyArray<Transaction>
  readonly receipts: ReadonlyArray<CrossShardReceipt>
  readonly proposerKey: PrivateKey
}

/** Assemble and sign a block. Pure: the timestamp comes in from the caller's Clock. */
export const buildBlock = (p: BuildBlockParams): Block => {
  const publicKey = p.proposerKey.publicKey
  const header = new BlockHeader({
    chainId: p.chainId,
    shard: p.shard,
    height: p.height,
    parentHash: p.parentHash,
    txRoot: txRootOf(p.transactions),
    receiptRoot: receiptRootOf(p.receipts),
    eventsRoot: p.eventsRoot,
    proposer: publicKey.address,
    timestamp: p.timestamp
  })
  return new Block({
    header,
    proposerPublicKey: publicKey.hex,
    signature: bytesToHex(p.proposerKey.signDigest(hashBytes(blockHash(header)))),
    transactions: p.transactions,
    receipts: p.receipts
  })
}

/** The proposer's key matches `proposer` and signed the header. */
export const verifyBlockHeader = (block: Block): Either.Either<void, BlockRejected> => {
  if (block.certificate !== undefined) {
    return reject("UnexpectedSignature", `block ${block.header.height} carries a BFT certificate on a single-producer chain`)
  }
  if (block.proposerPublicKey === undefined || block.signature === undefined) {
    return reject("ProposerKeyMismatch", `block ${block.header.height} carries no proposer key and signature`)
  }
  const key = Either.flatMap(hexToBytes(block.proposerPublicKey, PUBLIC_KEY_BYTES), PublicKey.fromBytes)
  if (Either.isLeft(key) || key.right.address !== block.header.proposer) {
    return reject("ProposerKeyMismatch", `key ${block.proposerPublicKey} is not proposer ${block.header.proposer}`)
  }
  const signature = Either.getOrThrow(hexToBytes(block.signature, SIGNATURE_BYTES)) // spelling checked by the schema
  if (!verifyDigest(signature, hashBytes(block.hash), key.right)) {
    return reject("BadProposerSignature", `signature does not verify for block ${block.hash}`)
  }
  return Either.void
}

export interface BuildCertifiedBlockParams {
  readonly chainId: bigint
  readonly shard: ShardId
  readonly height: number
  readonly parentHash: Hash32
  readonly eventsRoot: Hash32
  readonly timestamp: number
  readonly proposer: Address
  readonly transactions: ReadonlyArray<Transaction>
  readonly receipts: ReadonlyArray<CrossShardReceipt>
  readonly certificate: BftCertificate
  /** The committee a handover block hands over to. */
  readonly committee?: ShardCommittee | undefined
}

/** Assemble a BFT block: what every node builds, identically, from a committed consensus block. */
export const buildCertifiedBlock = (p: BuildCertifiedBlockParams): Block =>
  new Block({
    header: new BlockHeader({
      chainId: p.chainId,
      shard: p.shard,
      height: p.height,
      parentHash: p.parentHash,
      txRoot: txRootOf(p.transactions),
      receiptRoot: receiptRootOf(p.receipts),
      eventsRoot: p.eventsRoot,
      proposer: p.proposer,
      timestamp: p.timestamp
    }),
    transactions: p.transactions,
    receipts: p.receipts,
    certificate: p.certificate,
    ...(p.committee === undefined ? {} : { committee: p.committee })
  })

/** The body matches what the header commits to. */
export const verifyBlockBody = (block: Block): Either.Either<void, BlockRejected> => {
  if (block.transactions.length > MAX_BLOCK_TRANSACTIONS) {
    return reject("TooManyTransactions", `${block.transactions.length} > ${MAX_BLOCK_TRANSACTIONS}`)
  }
  if (block.receipts.length > MAX_BLOCK_RECEIPTS) {
    return reject("TooManyReceipts", `${block.receipts.length} > ${MAX_BLOCK_RECEIPTS}`)
  }
  const txRoot = txRootOf(block.transactions)
  if (txRoot !== block.header.txRoot) return reject("WrongTxRoot", `header ${block.header.txRoot}, body ${txRoot}`)
  const receiptRoot = receiptRootOf(block.receipts)
  if (receiptRoot !== block.header.receiptRoot) {
    return reject("WrongReceiptRoot", `header ${block.header.receiptRoot}, body ${receiptRoot}`)
  }
  return Either.void
}
