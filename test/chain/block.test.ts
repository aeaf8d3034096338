import { describe, expect, it } from "@effect/vitest"
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js"
import { Either, Schema } from "effect"
import { Block, BlockHeader, blockHash, verifyBlockBody, verifyBlockHeader } from "../../domain/chain/block.js"
import { HASH_BYTES, keccak256, keccakHex, ZERO_HASH, type Hash32 } from "../../domain/chain/hash.js"
import { bytesToHex, concatBytes } from "../../domain/chain/hex.js"
import { devKey, devProposerKey } from "../../domain/chain/keys.js"
import { EMPTY_ROOT, merkleRoot } from "../../domain/chain/merkle.js"
import { CrossShardReceipt, receiptIdOf } from "../../domain/chain/receipt.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { accountsOn, genesisState, nextBlock, transfer } from "./helpers.js"

const leaf = (i: number) => new Uint8Array(HASH_BYTES).fill(i)
// An independent sha256 (noble's), to check the OpenSSL-backed one the tree uses.
const L = (x: Uint8Array) => nobleSha256(concatBytes(Uint8Array.of(0), x))
const N = (a: Uint8Array, b: Uint8Array) => nobleSha256(concatBytes(Uint8Array.of(1), a, b))

describe("merkle", () => {
  it("the empty root is sha256 of nothing", () => {
    expect(EMPTY_ROOT).toBe("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    expect(merkleRoot([])).toBe(EMPTY_ROOT)
  })
  it("hashes leaves and nodes under different prefixes; an odd node moves up", () => {
    const [a, b, c] = [leaf(1), leaf(2), leaf(3)]
    expect(merkleRoot([a])).toBe(bytesToHex(L(a)))
    expect(merkleRoot([a, b])).toBe(bytesToHex(N(L(a), L(b))))
    expect(merkleRoot([a, b, c])).toBe(bytesToHex(N(N(L(a), L(b)), L(c))))
    expect(merkleRoot([b, a])).not.toBe(merkleRoot([a, b]))
    expect(merkleRoot([a, b, c])).not.toBe(merkleRoot([a, b, c, c])) // no duplication ambiguity
  })
})

const shard = 1 as ShardId
const { state } = genesisState(shard)
const [alice, bob] = accountsOn(shard)
const tx = transfer(alice!.key, { to: bob!.address, amount: 5n, nonce: 0n })
const receipt = (destShard: number) => {
  const txHash = keccakHex(Uint8Array.of(9))
  return new CrossShardReceipt({
    receiptId: receiptIdOf(txHash), sourceShard: 2 as ShardId, destShard: destShard as ShardId,
    from: alice!.address, to: bob!.address, amount: 3n, txHash
  })
}
const block = nextBlock(state, [tx], [receipt(1)])
const reason = (r: Either.Either<void, { readonly reason: string }>) => (Either.isLeft(r) ? r.left.reason : "ok")

describe("block", () => {
  it("buildBlock signs a header that verifies, with the roots of its body", () => {
    expect(reason(verifyBlockHeader(block))).toBe("ok")
    expect(reason(verifyBlockBody(block))).toBe("ok")
    expect(block.header.proposer).toBe(devProposerKey(shard).publicKey.address)
    expect(block.hash).toBe(blockHash(block.header))
  })
  it.each<[string, Partial<BlockHeader>]>([
    ["chainId", { chainId: 1n }],
    ["shard", { shard: 2 as ShardId }],
    ["height", { height: 9 }],
    ["parentHash", { parentHash: ZERO_HASH }],
    ["txRoot", { txRoot: EMPTY_ROOT }],
    ["receiptRoot", { receiptRoot: EMPTY_ROOT }],
    ["eventsRoot", { eventsRoot: ZERO_HASH }],
    ["timestamp", { timestamp: block.header.timestamp + 1 }]
  ])("changing the header's %s breaks the proposer signature", (_, change) => {
    const header = new BlockHeader({ ...block.header, ...change })
    expect(reason(verifyBlockHeader(new Block({ ...block, header })))).toBe("BadProposerSignature")
  })
  it("a key that is not the proposer's is refused", () => {
    const forged = new Block({ ...block, proposerPublicKey: devKey(0).publicKey.hex })
    expect(reason(verifyBlockHeader(forged))).toBe("ProposerKeyMismatch")
    const header = new BlockHeader({ ...block.header, proposer: devKey(0).publicKey.address })
    expect(reason(verifyBlockHeader(new Block({ ...block, header })))).toBe("ProposerKeyMismatch")
  })
  it("a body that does not match the header's roots is refused", () => {
    expect(reason(verifyBlockBody(new Block({ ...block, transactions: [] })))).toBe("WrongTxRoot")
    expect(reason(verifyBlockBody(new Block({ ...block, receipts: [receipt(2)] })))).toBe("WrongReceiptRoot")
  })
  it("round trips through its JSON wire form", () => {
    const json = JSON.stringify(Schema.encodeSync(Block)(block))
    const back = Schema.decodeUnknownSync(Schema.parseJson(Block))(json)
    expect(back.hash).toBe(block.hash)
    expect(back.transactions.map((t) => t.hash)).toEqual([tx.hash])
    expect(back.receipts[0]!.receiptId).toBe(receipt(1).receiptId)
    expect(reason(verifyBlockHeader(back))).toBe("ok")
    expect((JSON.parse(json) as { transactions: Array<string> }).transactions[0]).toBe(bytesToHex(tx.encoded))
  })
  it("receipt ids are keccak256 of the tx hash", () => {
    const txHash = tx.hash
    expect(receiptIdOf(txHash)).toBe(keccakHex(Buffer.from(txHash.slice(2), "hex")) as Hash32)
  })
})
