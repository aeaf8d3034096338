import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { readFileSync } from "node:fs"
import { keccakHex } from "../../domain/chain/hash.js"
import { bytesToHex, utf8 } from "../../domain/chain/hex.js"
import { decodeRlp, encodeRlp, rlpToBigInt, type RlpInput, type RlpItem } from "../../domain/chain/rlp.js"

/** Lenient hex for test vectors (some ethereum/tests vectors are uppercase or unprefixed). */
const raw = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/^0x/, ""), "hex"))

// ethereum/tests RLPTests/rlptest.json: strings are UTF-8, "#n" is a bigint.
type Vector = string | number | ReadonlyArray<Vector>
const toInput = (v: Vector): RlpInput =>
  typeof v === "number" ? BigInt(v)
    : typeof v === "string" ? (v.startsWith("#") ? BigInt(v.slice(1)) : utf8(v))
    : v.map(toInput)
const VALID: ReadonlyArray<readonly [string, Vector, string]> = [
  ["emptystring", "", "0x80"],
  ["bytestring00", "\u0000", "0x00"],
  ["bytestring01", "\u0001", "0x01"],
  ["bytestring7F", "\u007F", "0x7f"],
  ["shortstring", "dog", "0x83646f67"],
  ["shortstring2", "Lorem ipsum dolor sit amet, consectetur adipisicing eli",
    "0xb74c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c69"],
  ["longstring", "Lorem ipsum dolor sit amet, consectetur adipisicing elit",
    "0xb8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e7365637465747572206164697069736963696e6720656c6974"],
  ["zero", 0, "0x80"],
  ["smallint", 1, "0x01"],
  ["smallint2", 16, "0x10"],
  ["smallint3", 79, "0x4f"],
  ["smallint4", 127, "0x7f"],
  ["mediumint1", 128, "0x8180"],
  ["mediumint2", 1000, "0x8203e8"],
  ["mediumint3", 100000, "0x830186a0"],
  ["mediumint4", "#83729609699884896815286331701780722", "0x8f102030405060708090a0b0c0d0e0f2"],
  ["mediumint5", "#105315505618206987246253880190783558935785933862974822347068935681",
    "0x9c0100020003000400050006000700080009000a000b000c000d000e01"],
  ["emptylist", [], "0xc0"],
  ["stringlist", ["dog", "god", "cat"], "0xcc83646f6783676f6483636174"],
  ["multilist", ["zw", [4], 1], "0xc6827a77c10401"],
  ["shortListMax1", ["asdf", "qwer", "zxcv", "asdf", "qwer", "zxcv", "asdf", "qwer", "zxcv", "asdf", "qwer"],
    "0xf784617364668471776572847a78637684617364668471776572847a78637684617364668471776572847a78637684617364668471776572"],
  ["longList1", Array.from({ length: 4 }, () => ["asdf", "qwer", "zxcv"]),
    "0xf840" + "cf84617364668471776572847a786376".repeat(4)],
  ["longList2", Array.from({ length: 32 }, () => ["asdf", "qwer", "zxcv"]),
    "0xf90200" + "cf84617364668471776572847a786376".repeat(32)],
  ["listsoflists", [[[], []], []], "0xc4c2c0c0c0"],
  ["listsoflists2", [[], [[]], [[], [[]]]], "0xc7c0c1c0c3c0c1c0"],
  ["dictTest1", [["key1", "val1"], ["key2", "val2"], ["key3", "val3"], ["key4", "val4"]],
    "0xecca846b6579318476616c31ca846b6579328476616c32ca846b6579338476616c33ca846b6579348476616c34"],
  ["bigint", "#115792089237316195423570985008687907853269984665640564039457584007913129639936",
    "0xa1010000000000000000000000000000000000000000000000000000000000000000"]
]

// ethereum/tests RLPTests/invalidRLPTest.json, with the reason our decoder gives.
const INVALID: ReadonlyArray<readonly [string, string, string]> = [
  ["int32Overflow", "0xbf0f000000000000021111", "LengthTooLarge"],
  ["int32Overflow2", "0xff0f000000000000021111", "LengthTooLarge"],
  ["wrongSizeList", "0xf80180", "NonCanonicalLength"],
  ["wrongSizeList2", "0xf80100", "NonCanonicalLength"],
  ["incorrectLengthInArray", "0xb9002100dc2b275d0f74e8a53e6f4ec61b27f24278820be3f82ea2110e582081b0565df0", "NonCanonicalLength"],
  ["randomRLP", "0xf861f83eb9002100dc2b275d0f74e8a53e6f4ec61b27f24278820be3f82ea2110e582081b0565df027b90015002d5ef8325ae4d034df55d4b58d0dfba64d61ddd17be00000b9001a00dae30907045a2f66fa36f2bb8aa9029cbb0b8a7b3b5c435ab331", "NonCanonicalLength"],
  ["bytesShouldBeSingleByte00", "0x8100", "NonCanonicalSingleByte"],
  ["bytesShouldBeSingleByte01", "0x8101", "NonCanonicalSingleByte"],
  ["bytesShouldBeSingleByte7F", "0x817F", "NonCanonicalSingleByte"],
  ["leadingZerosInLongLengthArray1", "b90040" + "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", "NonCanonicalLength"],
  ["leadingZerosInLongLengthArray2", "b800", "NonCanonicalLength"],
  ["leadingZerosInLongLengthList1", "fb00000040" + "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", "NonCanonicalLength"],
  ["leadingZerosInLongLengthList2", "f800", "NonCanonicalLength"],
  ["nonOptimalLongLengthArray1", "b81000112233445566778899aabbccddeeff", "NonCanonicalLength"],
  ["nonOptimalLongLengthArray2", "b801ff", "NonCanonicalLength"],
  ["nonOptimalLongLengthList1", "f810000102030405060708090a0b0c0d0e0f", "NonCanonicalLength"],
  ["nonOptimalLongLengthList2", "f803112233", "NonCanonicalLength"]
]

const reasonOf = (hex: string): string => {
  const r = decodeRlp(raw(hex))
  return Either.isLeft(r) ? r.left.reason : "decoded"
}

describe("RLP: ethereum/tests vectors", () => {
  for (const [name, input, out] of VALID) {
    it(`encodes ${name}`, () => {
      expect(bytesToHex(encodeRlp(toInput(input)))).toBe(out)
    })
  }
  it("encodes a 1024-byte string with a two-byte length", () => {
    const s = new Uint8Array(1024).fill(0x61)
    expect(bytesToHex(encodeRlp(s)).slice(0, 8)).toBe("0xb90400")
  })
  for (const [name, hex, reason] of INVALID) {
    it(`rejects ${name} (${reason})`, () => {
      expect(reasonOf(hex)).toBe(reason)
    })
  }
})

describe("RLP: more canonical rejections", () => {
  it.each([
    ["", "Empty"],
    ["0x83646f", "Truncated"], // "dog" missing a byte
    ["0xc283646f67", "Truncated"], // list shorter than its item
    ["0x83646f6700", "TrailingBytes"],
    ["0x8080", "TrailingBytes"],
    ["0xc3646f67", "decoded"] // a list of three single bytes is fine
  ])("%s → %s", (hex, reason) => {
    expect(reasonOf(hex)).toBe(reason)
  })
  it("integers reject leading zeros and oversize", () => {
    const lead = rlpToBigInt(raw("0x0001"), "n", 32)
    expect(Either.isLeft(lead) && lead.left.reason).toBe("LeadingZero")
    const big = rlpToBigInt(new Uint8Array(33).fill(1), "n", 32)
    expect(Either.isLeft(big) && big.left.reason).toBe("IntegerTooLarge")
    expect(rlpToBigInt(new Uint8Array(0), "n", 32)).toEqual(Either.right(0n))
  })
})

const itemArb: fc.Arbitrary<RlpItem> = fc.letrec<{ item: RlpItem }>((tie) => ({
  item: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.uint8Array({ maxLength: 80 }),
    fc.array(tie("item"), { maxLength: 5 })
  )
})).item

const normalize = (item: RlpItem): unknown =>
  item instanceof Uint8Array ? bytesToHex(item) : item.map(normalize)

describe("RLP properties", () => {
  it("decode(encode(x)) = x for any nested item", () => {
    fc.assert(fc.property(itemArb, (item) => {
      const back = decodeRlp(encodeRlp(item))
      expect(Either.isRight(back)).toBe(true)
      expect(normalize(Either.getOrThrow(back))).toEqual(normalize(item))
    }), { seed: 42, numRuns: 500 })
  })
  it("bigint round trip is minimal", () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), (n) => {
      const item = Either.getOrThrow(decodeRlp(encodeRlp(n)))
      expect(Either.getOrThrow(rlpToBigInt(item, "n", 32))).toBe(n)
    }), { seed: 7, numRuns: 300 })
  })
  it("whatever decodes re-encodes to the same bytes (one encoding per value)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = decodeRlp(bytes)
      if (Either.isRight(r)) expect(bytesToHex(encodeRlp(r.right))).toBe(bytesToHex(bytes))
    }), { seed: 3, numRuns: 3000 })
  })
})

// Real data: Ethereum mainnet headers. keccak(rlp(header)) is the block hash.
// Copied from ../shared/fixtures/ethereum (block 21925176: header fields only).
const FIXTURES = new URL("./fixtures", import.meta.url).pathname
const int = (hex: string): bigint => BigInt(hex)
type Header = Record<string, string>
const preLondon = (h: Header): RlpInput => [
  raw(h.parentHash!), raw(h.uncleHash!), raw(h.coinbase!), raw(h.stateRoot!), raw(h.transactionsTrie!),
  raw(h.receiptTrie!), raw(h.logsBloom!), int(h.difficulty!), int(h.number!), int(h.gasLimit!), int(h.gasUsed!),
  int(h.timestamp!), raw(h.extraData!), raw(h.mixHash!), raw(h.nonce!)
]
const MAINNET_GENESIS_HASH = "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"

describe("RLP: Ethereum mainnet headers", () => {
  const blocks = JSON.parse(readFileSync(`${FIXTURES}/mainnet-blocks-1-5.json`, "utf8")) as ReadonlyArray<{
    header: Header
    uncleHeaders: ReadonlyArray<Header>
  }>
  it("blocks 1-5 chain: each header hash is the next block's parentHash", () => {
    expect(blocks[0]!.header.parentHash).toBe(MAINNET_GENESIS_HASH)
    for (let i = 0; i + 1 < blocks.length; i++) {
      expect(keccakHex(encodeRlp(preLondon(blocks[i]!.header)))).toBe(blocks[i + 1]!.header.parentHash)
    }
  })
  it("uncle lists hash to the header's uncleHash", () => {
    const withUncles = blocks.filter((b) => b.uncleHeaders.length > 0)
    expect(withUncles.length).toBeGreaterThan(0)
    for (const b of withUncles) expect(keccakHex(encodeRlp(b.uncleHeaders.map(preLondon)))).toBe(b.header.uncleHash)
  })
  it("headers decode back to the same fields", () => {
    for (const b of blocks) {
      const bytes = encodeRlp(preLondon(b.header))
      expect(bytesToHex(encodeRlp(Either.getOrThrow(decodeRlp(bytes))))).toBe(bytesToHex(bytes))
    }
  })
  it("Cancun block 21925176 (20-field header) hashes to its hash", () => {
    const h = JSON.parse(readFileSync(`${FIXTURES}/block-21925176-header.json`, "utf8")) as Header
    const fields: RlpInput = [
      raw(h.parentHash!), raw(h.sha3Uncles!), raw(h.miner!), raw(h.stateRoot!), raw(h.transactionsRoot!),
      raw(h.receiptsRoot!), raw(h.logsBloom!), int(h.difficulty!), int(h.number!), int(h.gasLimit!), int(h.gasUsed!),
      int(h.timestamp!), raw(h.extraData!), raw(h.mixHash!), raw(h.nonce!), int(h.baseFeePerGas!),
      raw(h.withdrawalsRoot!), int(h.blobGasUsed!), int(h.excessBlobGas!), raw(h.parentBeaconBlockRoot!)
    ]
    expect(keccakHex(encodeRlp(fields))).toBe(h.hash)
  })
})
