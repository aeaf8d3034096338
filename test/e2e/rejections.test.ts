/**
 * Typed errors over the wire: every bad transaction comes back from a real
 * node as `TransactionRejected` with the domain's reason, and leaves no trace
 * (no event appended, no balance or nonce changed, nothing pending); bad
 * lookups are `InvalidRequest` or `NotFound`. Over WebSocket and HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Either } from "effect"
import type { AccountInfo } from "../../src/client/index.js"
import { MAX_TRANSACTION_BYTES } from "../../domain/chain/transaction.js"
import { PrivateKey } from "../../domain/chain/keys.js"
import { DEV, GENESIS_BALANCE, QUIET_BEACON, devPair, signTransfer } from "./support/chain.js"
import type { SignedTransfer } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { cleanup, makeTempDir, spawnNode } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"

let node: NodeProcess
let ws: TestClient
let http: TestClient

const [sender, receiver] = devPair(false)
/** The sender has made one transfer (nonce 0) before the bad ones. */
const NEXT_NONCE = 1n

const snapshot = async (c: TestClient) => {
  const status = await c.run(c.client.node.status())
  const accounts: ReadonlyArray<AccountInfo> = await Promise.all(
    DEV.map((d) => c.run(c.client.account.get({ address: d.address })))
  )
  const all = await c.run(c.client.events.read({ from: 0, limit: 10_000 }))
  return { status, accounts, lastPosition: all.at(-1)!.position }
}

/** Submit `raw`; expect TransactionRejected with `reason`; expect no trace of it anywhere. */
const expectRejected = async (c: TestClient, raw: string, reason: string, hash?: string) => {
  const before = await snapshot(c)
  const error = await c.fail(c.client.tx.submit({ raw, wait: true }))
  expect(error._tag).toBe("TransactionRejected")
  if (error._tag !== "TransactionRejected") return
  expect(error.reason).toBe(reason)
  expect(error.detail).not.toBe("")
  const after = await snapshot(c)
  expect(after.lastPosition).toBe(before.lastPosition)
  expect(await c.run(c.client.events.read({ from: before.lastPosition, limit: 10 }))).toEqual([])
  expect(after.accounts).toEqual(before.accounts)
  expect(after.status).toEqual(before.status)
  expect(after.status.shards.every((s) => s.pendingTransactions === 0)).toBe(true)
  if (hash !== undefined) {
    const lookup = await c.fail(c.client.tx.get({ hash }))
    expect(lookup._tag).toBe("NotFound")
  }
}

const good = (o: Partial<Parameters<typeof signTransfer>[0]> = {}): SignedTransfer =>
  signTransfer({ key: sender.key, to: receiver.address, amount: 1_000n, nonce: NEXT_NONCE, ...o })

/** Flip one byte in the middle of the signature (the last 64 bytes of the RLP). */
const flipSignatureByte = (raw: string): string => {
  const at = raw.length - 64 // a byte of s
  const byte = parseInt(raw.slice(at, at + 2), 16) ^ 0x01
  return raw.slice(0, at) + byte.toString(16).padStart(2, "0") + raw.slice(at + 2)
}

beforeAll(async () => {
  node = await spawnNode({ dataDir: makeTempDir("rejections"), extraArgs: QUIET_BEACON }) // "nothing appended" must hold
  ws = await openClient(node.url)
  http = await openClient(`http://127.0.0.1:${node.port}/rpc`)
  const first = signTransfer({ key: sender.key, to: receiver.address, amount: 1n, nonce: 0n })
  const result = await ws.run(ws.client.tx.submit({ raw: first.raw, wait: true }))
  expect(result.status).toBe("included")
})

afterAll(async () => {
  await ws?.close()
  await http?.close()
  await cleanup()
})

describe("typed rejections over the wire, and nothing appended", () => {
  it("a flipped signature byte: BadSignature", async () => {
    const tx = good()
    const raw = flipSignatureByte(tx.raw)
    expect(raw).not.toBe(tx.raw)
    await expectRejected(ws, raw, "BadSignature")
  })

  it("another chain's id: WrongChain", async () => {
    const tx = good({ chainId: 1n })
    await expectRejected(ws, tx.raw, "WrongChain", tx.hash)
  })

  it("a nonce already used: NonceReused", async () => {
    const tx = good({ nonce: 0n, amount: 2n })
    await expectRejected(ws, tx.raw, "NonceReused", tx.hash)
  })

  it("a nonce that leaves a gap: NonceGap", async () => {
    const tx = good({ nonce: NEXT_NONCE + 5n })
    await expectRejected(ws, tx.raw, "NonceGap", tx.hash)
  })

  it("more than the balance (amount + fee): InsufficientBalance; a fresh key with nothing: too", async () => {
    const all = good({ amount: GENESIS_BALANCE })
    await expectRejected(ws, all.raw, "InsufficientBalance", all.hash)
    const stranger = Either.getOrThrow(PrivateKey.fromBytes(new Uint8Array(32).fill(7)))
    const tx = signTransfer({ key: stranger, to: receiver.address, amount: 1n, nonce: 0n })
    await expectRejected(ws, tx.raw, "InsufficientBalance", tx.hash)
  })

  it("bytes that are not a transaction: Malformed (not hex, odd length, not RLP, truncated, a trailing byte)", async () => {
    const tx = good()
    for (const raw of ["", "0x", "zz", "0xzz", "0x123", "0x1234", tx.raw.slice(0, -2), tx.raw + "00"]) {
      await expectRejected(ws, raw, "Malformed")
    }
  })

  it(`more than ${MAX_TRANSACTION_BYTES} bytes: Oversized`, async () => {
    await expectRejected(ws, "0x" + "00".repeat(MAX_TRANSACTION_BYTES + 1), "Oversized")
  })

  it("the same rejections over HTTP", async () => {
    await expectRejected(http, flipSignatureByte(good().raw), "BadSignature")
    await expectRejected(http, good({ nonce: 0n }).raw, "NonceReused")
    await expectRejected(http, "0xzz", "Malformed")
  })

  it("lookups: a bad address or hash is InvalidRequest; a missing block or tx is NotFound", async () => {
    for (const c of [ws, http]) {
      for (const address of ["nothex", "0x123", "0x" + "g".repeat(40), sender.address + "00", ""]) {
        const e = await c.fail(c.client.account.get({ address }))
        expect(e._tag).toBe("InvalidRequest")
      }
      expect((await c.fail(c.client.tx.get({ hash: "0x1234" })))._tag).toBe("InvalidRequest")
      expect((await c.fail(c.client.tx.get({ hash: "0x" + "ab".repeat(32) })))._tag).toBe("NotFound")
      const missing = await c.fail(c.client.block.get({ shard: 1, height: 999 }))
      expect(missing).toMatchObject({ _tag: "NotFound", what: "block", id: "1/999" })
      expect((await c.fail(c.client.block.get({ shard: 1, height: 0 })))._tag).toBe("NotFound")
      expect((await c.fail(c.client.block.get({ shard: 9, height: 1 })))._tag).toBe("InvalidRequest")
      expect((await c.fail(c.client.events.read({ from: -1 })))._tag).toBe("InvalidRequest")
      expect((await c.fail(c.client.events.read({ from: 0, limit: 10_001 })))._tag).toBe("InvalidRequest")
    }
    // An address in upper case is the same account.
    const upper = await ws.run(ws.client.account.get({ address: sender.address.toUpperCase().replace("0X", "0x") }))
    expect(upper.address).toBe(sender.address)
  })

  it("one sender's nonces sent back to back on one connection enter in order; a bad link refuses the rest", async () => {
    const [piper, to] = devPair(true, 3)
    expect(piper.address).not.toBe(sender.address)
    const chain = Array.from({ length: 6 }, (_, k) =>
      signTransfer({ key: piper.key, to: to.address, amount: BigInt(100 + k), nonce: BigInt(k) })
    )
    // Sent without waiting for each reply: the server handles them concurrently.
    const good = await Promise.all(
      chain.map((tx) => Effect.runPromise(Effect.either(ws.client.tx.submit({ raw: tx.raw, wait: true }))))
    )
    expect(good.map((r) => (r._tag === "Right" ? r.right.status : r.left._tag))).toEqual(Array(6).fill("included"))

    const next = Array.from({ length: 5 }, (_, k) =>
      signTransfer({ key: piper.key, to: to.address, amount: BigInt(200 + k), nonce: BigInt(6 + k) })
    )
    const raws = next.map((tx, k) => (k === 2 ? flipSignatureByte(tx.raw) : tx.raw))
    const results = await Promise.all(
      raws.map((raw) => Effect.runPromise(Effect.either(ws.client.tx.submit({ raw, wait: true }))))
    )
    expect(results.map((r) => (r._tag === "Right" ? r.right.status : r.left._tag === "TransactionRejected" ? r.left.reason : r.left._tag))).toEqual([
      "included",
      "included",
      "BadSignature",
      "NonceGap",
      "NonceGap"
    ])
    expect((await ws.run(ws.client.account.get({ address: piper.address }))).nonce).toBe(8n)
  })

  it("after all that, a good transaction with the next nonce is included", async () => {
    const tx = good({ amount: 77n })
    const result = await ws.run(ws.client.tx.submit({ raw: tx.raw, wait: true }))
    expect(result.status).toBe("included")
    const info = await ws.run(ws.client.account.get({ address: sender.address }))
    expect(info.nonce).toBe(NEXT_NONCE + 1n)
    // Typed errors are values the caller can branch on.
    const reason = await Effect.runPromise(
      ws.client.tx.submit({ raw: tx.raw }).pipe(
        Effect.as("admitted"),
        Effect.catchTag("TransactionRejected", (e) => Effect.succeed(e.reason)),
        Effect.catchAll(() => Effect.succeed("other"))
      )
    )
    expect(reason).toBe("NonceReused")
  })
})
