/**
 * The one-process devnet end to end, as its users meet it: `topai node start`
 * as a real child process, the typed client over WebSocket, Ctrl-C, a restart
 * on the same data dir, and `topai audit replay` on the result — then on
 * tampered copies of it.
 *
 * The tests of this file are steps of one story and share one data dir (in
 * order: vitest runs a file's tests one after another).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import type { AccountInfo, EventView, TxView } from "../../src/client/index.js"
import { receiptIdOf } from "../../domain/chain/receipt.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import {
  DEFAULT_FEE,
  DEV,
  DEV_SUPPLY,
  DEVNET_CHAIN_ID,
  GENESIS_BALANCE,
  GENESIS_SUPPLY,
  QUIET_BEACON,
  SYSTEM_SUPPLY,
  devPair,
  signTransfer,
  waitFor
} from "./support/chain.js"
import type { DevAccount, SignedTransfer } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, freePort, makeTempDir, runCli, spawnNode } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"
import { changeAmountDigit, copyDataDir, deleteEvent, forgeAmountWithChain, middleEvent } from "./support/tamper.js"

/** A cross-shard receipt is credited within this after its source block. */
const DELIVERY_TIMEOUT_MS = 10_000
const READ_LIMIT = 10_000

let dataDir: string
let node: NodeProcess
let c: TestClient

/** What the test expects every dev account to hold: genesis, then each included transfer. */
const model = new Map(DEV.map((d) => [d.address as string, { balance: GENESIS_BALANCE, nonce: 0n }]))
const included: Array<{ readonly tx: SignedTransfer; readonly shard: number; readonly height: number }> = []
/** Snapshot taken just before the node is stopped, compared after the restart. */
let beforeStop: {
  readonly accounts: ReadonlyArray<AccountInfo>
  readonly txs: ReadonlyArray<TxView>
  readonly events: ReadonlyArray<EventView>
  readonly heights: ReadonlyArray<number>
}

const account = (d: DevAccount) => c.run(c.client.account.get({ address: d.address }))
const allAccounts = () => Promise.all(DEV.map(account))
const readAll = () => c.run(c.client.events.read({ from: 0, limit: READ_LIMIT }))
const readStream = (stream: string) => c.run(c.client.events.read({ stream, from: 0, limit: READ_LIMIT }))

/** Sign the sender's next transfer, submit with wait, record it in the model. */
const transfer = async (from: DevAccount, to: DevAccount, amount: bigint) => {
  const nonce = model.get(from.address)!.nonce
  const tx = signTransfer({ key: from.key, to: to.address, amount, nonce })
  const result = await c.run(c.client.tx.submit({ raw: tx.raw, wait: true }))
  expect(result.hash).toBe(tx.hash)
  expect(result.status).toBe("included")
  expect(result.shard).toBe(from.shard)
  expect(result.blockHeight).toBeGreaterThanOrEqual(1)
  const sender = model.get(from.address)!
  model.set(from.address, { balance: sender.balance - amount - tx.fee, nonce: sender.nonce + 1n })
  const receiver = model.get(to.address)!
  model.set(to.address, { balance: receiver.balance + amount, nonce: receiver.nonce })
  included.push({ tx, shard: from.shard, height: result.blockHeight! })
  return { tx, height: result.blockHeight! }
}

const untilDelivered = (hash: string) =>
  waitFor(
    `receipt of ${hash} delivered`,
    async () => {
      const view = await c.run(c.client.tx.get({ hash }))
      return view.receiptDelivered === true ? view : undefined
    },
    { timeoutMs: DELIVERY_TIMEOUT_MS }
  )

const expectModelBalances = async () => {
  for (const info of await allAccounts()) {
    const expected = model.get(info.address)!
    expect({ address: info.address, balance: info.balance, nonce: info.nonce }).toEqual({
      address: info.address,
      ...expected
    })
    expect(info.pendingNonce).toBe(info.nonce)
  }
}

const expectHashLinked = (events: ReadonlyArray<EventView>) => {
  events.forEach((e, i) => {
    expect(e.revision).toBe(i)
    if (i > 0) expect(e.prevHash).toBe(events[i - 1]!.hash)
  })
}

beforeAll(async () => {
  dataDir = makeTempDir("devnet")
  node = await spawnNode({ dataDir, extraArgs: QUIET_BEACON }) // the log moves only with this story's transactions
  c = await openClient(node.url)
})

afterAll(async () => {
  await c?.close()
  await cleanup()
})

describe("one-process devnet, end to end", () => {
  it("status: the devnet chain with a beacon, two transfer shards and the AI shard at genesis", async () => {
    const status = await c.run(c.client.node.status())
    expect(status.chainId).toBe(DEVNET_CHAIN_ID)
    expect(status.shards.map((s) => [s.shard, s.kind, s.height])).toEqual([
      [0, "beacon", 0],
      [1, "transfer", 0],
      [2, "transfer", 0],
      [3, "ai", 0]
    ])
    for (const s of status.shards.slice(1)) {
      expect(s.lastBlockHash).toMatch(/^0x[0-9a-f]{64}$/)
      expect(s.pendingTransactions).toBe(0)
    }
    // Every dev account is funded on its own shard.
    for (const info of await allAccounts()) {
      const dev = DEV.find((d) => d.address === info.address)!
      expect([info.shard, info.balance, info.nonce]).toEqual([dev.shard, GENESIS_BALANCE, 0n])
    }
  })

  it("a second node on the same data dir is refused, and so is a port in use; the running node is unharmed", async () => {
    const [sameDir, samePort] = await Promise.all([
      runCli(["node", "start", "--data-dir", dataDir, "--port", String(await freePort())]),
      runCli(["node", "start", "--data-dir", makeTempDir("other"), "--port", String(node.port)])
    ])
    expect(sameDir.code).toBe(1)
    expect(sameDir.stderr.trim()).toMatch(new RegExp(`^error: .* is in use by another topai node \\(pid ${node.pid}\\)`))
    expect(samePort.code).toBe(1)
    expect(samePort.stderr.trim()).toMatch(/^error: cannot serve RPC on 127\.0\.0\.1:\d+: .*EADDRINUSE/)
    expect((await c.run(c.client.node.status())).shards.map((s) => s.height)).toEqual([0, 0, 0, 0])
  })

  it("same-shard and cross-shard transfers: included, looked up, receipts credited once, balances exact", async () => {
    const [a, b] = devPair(true)
    const [x, y] = devPair(false)
    const [p, q] = devPair(false, 0, y.shard)
    expect(a.shard).toBe(b.shard)
    expect(x.shard).not.toBe(y.shard)
    expect(p.shard).not.toBe(x.shard) // cross-shard in both directions

    const same1 = await transfer(a, b, 1_234n)
    const same2 = await transfer(a, b, 5_678n)
    const cross1 = await transfer(x, y, 424_242n)
    const cross2 = await transfer(p, q, 999_999_999_999_999_999n)
    expect(same2.height).toBeGreaterThan(same1.height)

    for (const { tx, height } of [same1, same2]) {
      const view = await c.run(c.client.tx.get({ hash: tx.hash }))
      expect(view).toMatchObject({
        hash: tx.hash,
        shard: a.shard,
        status: "included",
        blockHeight: height,
        from: a.address,
        to: b.address,
        kind: "transfer",
        nonce: tx.nonce,
        fee: DEFAULT_FEE,
        amount: tx.amount,
        raw: tx.raw
      })
      expect(view.receiptId).toBeUndefined()
      const block = await c.run(c.client.block.get({ shard: a.shard, height }))
      expect(block.transactions).toContain(tx.hash)
    }

    for (const [{ tx, height }, from, to] of [
      [cross1, x, y],
      [cross2, p, q]
    ] as const) {
      const first = await c.run(c.client.tx.get({ hash: tx.hash }))
      expect(first).toMatchObject({ status: "included", shard: from.shard, blockHeight: height, to: to.address })
      expect(first.receiptId).toBe(receiptIdOf(tx.hash as Hash32))
      const delivered = await untilDelivered(tx.hash)
      expect(delivered.receiptDelivered).toBe(true)
      // Exactly one block of the destination shard carries the receipt.
      const destHeight = (await c.run(c.client.node.status())).shards.find((s) => s.shard === to.shard)!.height
      const carriers: Array<number> = []
      for (let h = 1; h <= destHeight; h++) {
        const block = await c.run(c.client.block.get({ shard: to.shard, height: h }))
        if (block.receipts.includes(first.receiptId!)) carriers.push(h)
      }
      expect(carriers).toHaveLength(1)
    }

    // Blocks chain by parent hash (the transfer shards': the AI shard holds none of this story's).
    const status = await c.run(c.client.node.status())
    for (const s of status.shards.filter((x) => x.kind === "transfer")) {
      let parent: string | undefined
      for (let h = 1; h <= s.height; h++) {
        const block = await c.run(c.client.block.get({ shard: s.shard, height: h }))
        expect([block.shard, block.height]).toEqual([s.shard, h])
        if (parent !== undefined) expect(block.parentHash).toBe(parent)
        parent = block.hash
      }
      expect(parent).toBe(s.lastBlockHash)
    }

    await expectModelBalances()
    const total = (await allAccounts()).reduce((sum, info) => sum + info.balance, 0n)
    expect(total + BigInt(included.length) * DEFAULT_FEE).toBe(DEV_SUPPLY)
  })

  it("events.read: each shard stream hash-linked from revision 0; $all in global order; one receipt, one credit", async () => {
    const all = await readAll()
    const positions = all.map((e) => e.position)
    expect(positions).toEqual([...positions].sort((m, n) => m - n))
    expect(new Set(positions).size).toBe(positions.length)

    const streams = [...new Set(all.map((e) => e.stream))].sort()
    expect(streams).toEqual(["shard-0", "shard-1", "shard-2", "shard-3"]) // the beacon, two transfer shards, the AI shard
    let total = 0
    for (const stream of streams) {
      const events = await readStream(stream)
      expectHashLinked(events)
      expect(events[0]!.type).toBe("GenesisApplied")
      expect(events.at(-1)!.type).toBe("BlockExecuted")
      expect(events).toEqual(all.filter((e) => e.stream === stream))
      total += events.length
    }
    expect(total).toBe(all.length)

    // `from` is exclusive for $all and inclusive (a revision) for a stream; `limit` caps.
    const middle = all[5]!
    expect(await c.run(c.client.events.read({ from: middle.position, limit: 3 }))).toEqual(all.slice(6, 9))
    const s1 = all.filter((e) => e.stream === "shard-1")
    expect(await c.run(c.client.events.read({ stream: "shard-1", from: 2, limit: 2 }))).toEqual(s1.slice(2, 4))

    // Each cross-shard transfer: one CrossShardSent at the source, one CrossShardReceived at the destination.
    for (const { tx, shard } of included.filter((t) => DEV.find((d) => d.address === t.tx.to)!.shard !== t.shard)) {
      const receiptId = receiptIdOf(tx.hash as Hash32)
      const sent = all.filter((e) => e.type === "CrossShardSent" && (e.data as { receiptId: string }).receiptId === receiptId)
      const received = all.filter(
        (e) => e.type === "CrossShardReceived" && (e.data as { receiptId: string }).receiptId === receiptId
      )
      expect(sent.map((e) => e.stream)).toEqual([`shard-${shard}`])
      expect(received).toHaveLength(1)
      expect(received[0]!.stream).not.toBe(`shard-${shard}`)
      expect(received[0]!.position).toBeGreaterThan(sent[0]!.position)
      expect((received[0]!.data as { amount: string }).amount).toBe(String(tx.amount))
    }

    const status = await c.run(c.client.node.status())
    expect(status.eventsPosition).toBe(all.at(-1)!.position)
  })

  it("events.subscribe: catch-up from a position, then live events of a new block; taking N ends the stream", async () => {
    const all = await readAll()
    const caughtUp = await c.run(c.client.events.subscribe({ from: 0 }).pipe(Stream.take(7), Stream.runCollect))
    expect(Chunk.toReadonlyArray(caughtUp)).toEqual(all.slice(0, 7))
    const stream2 = await c.run(c.client.events.subscribe({ stream: "shard-2", from: 1 }).pipe(Stream.take(3), Stream.runCollect))
    expect(Chunk.toReadonlyArray(stream2)).toEqual(all.filter((e) => e.stream === "shard-2").slice(1, 4))

    // Live: subscribe after the last event, then make a block with one same-shard transfer.
    const last = all.at(-1)!.position
    const live = await Effect.runPromise(
      Effect.forkDaemon(c.client.events.subscribe({ from: last }).pipe(Stream.take(4), Stream.runCollect))
    )
    const [a, b] = devPair(true)
    const { tx, height } = await transfer(a, b, 31_337n)
    const events = Chunk.toReadonlyArray(await c.run(Fiber.join(live)))
    expect(events.map((e) => e.type)).toEqual(["BlockApplied", "FeeCharged", "Transferred", "BlockExecuted"])
    expect(events.every((e) => e.stream === `shard-${a.shard}` && e.position > last)).toBe(true)
    expect(events[2]!.data).toMatchObject({ txHash: tx.hash, amount: "31337" })
    expect((events[3]!.data as { height: number }).height).toBe(height)
    // The node is still fine after the client stopped its subscriptions.
    expect((await c.run(c.client.node.status())).eventsPosition).toBe(events[3]!.position)
  })

  it("Ctrl-C (SIGINT) stops the node cleanly, exit code 0, even with a live subscription open", async () => {
    await expectModelBalances()
    beforeStop = {
      accounts: await allAccounts(),
      txs: await Promise.all(included.map(({ tx }) => c.run(c.client.tx.get({ hash: tx.hash })))),
      events: await readAll(),
      heights: (await c.run(c.client.node.status())).shards.map((s) => s.height)
    }
    // A subscription that has delivered its catch-up and now waits for live events.
    let onFirst = () => {}
    const first = new Promise<void>((resolve) => (onFirst = resolve))
    const pending = Effect.runPromise(
      Effect.either(
        c.client.events.subscribe({ from: beforeStop.events.at(-2)!.position }).pipe(
          Stream.tap(() => Effect.sync(onFirst)),
          Stream.runCollect
        )
      )
    )
    await first
    // Not forced: the node exited by itself before stop's SIGKILL deadline (NODE_STOP_TIMEOUT_MS).
    const exit = await node.stop("SIGINT")
    expect({ code: exit.code, signal: exit.signal, forced: exit.forced }).toEqual({ code: 0, signal: null, forced: false })
    expect(node.output()).not.toMatch(/ERROR|WARN|crashed|Error:/)
    // The open subscription ends with an error, not a hang (the client reports the closed socket).
    expect((await pending)._tag).toBe("Left")
    await c.close()
  })

  it("restart on the same data dir: every balance, nonce, height, tx and event is back; transfers go on", async () => {
    node = await spawnNode({ dataDir })
    c = await openClient(node.url)
    const status = await c.run(c.client.node.status())
    expect(status.shards.map((s) => s.height)).toEqual(beforeStop.heights)
    expect(await allAccounts()).toEqual(beforeStop.accounts)
    // The chain index is rebuilt from the events: every tx with its block and receipt state.
    const txs = await Promise.all(included.map(({ tx }) => c.run(c.client.tx.get({ hash: tx.hash }))))
    expect(txs).toEqual(beforeStop.txs)
    expect(await readAll()).toEqual(beforeStop.events)
    expect(status.eventsPosition).toBe(beforeStop.events.at(-1)!.position)

    const [x, y] = devPair(false)
    const { tx, height } = await transfer(x, y, 7_000_007n)
    expect(height).toBe(beforeStop.heights[x.shard]! + 1)
    expect(tx.nonce).toBe(beforeStop.accounts.find((a) => a.address === x.address)!.nonce)
    await untilDelivered(tx.hash)
    await expectModelBalances()
  })

  it("topai audit replay passes on the live node's data dir (read-only beside the writer) and after a stop", async () => {
    const text = await runCli(auditArgs(dataDir))
    expect(text.stderr).toBe("")
    expect(text.code).toBe(0)
    expect(text.stdout).toContain("audit passed")

    const finalEvents = await readAll()
    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)

    const json = await runCli([...auditArgs(dataDir), "--json"])
    expect(json.code).toBe(0)
    const report = JSON.parse(json.stdout) as {
      ok: boolean
      events: number
      genesisSupply: string
      shards: Array<{ shard: number; balances: string; burned: string; sentOut: string; receivedIn: string }>
    }
    expect(report.ok).toBe(true)
    expect(report.events).toBe(finalEvents.length)
    expect(BigInt(report.genesisSupply)).toBe(GENESIS_SUPPLY)
    const burned = report.shards.reduce((sum, s) => sum + BigInt(s.burned), 0n)
    expect(burned).toBe(BigInt(included.length) * DEFAULT_FEE)
    const balances = report.shards.reduce((sum, s) => sum + BigInt(s.balances), 0n)
    const expectedBalances = [...model.values()].reduce((sum, a) => sum + a.balance, 0n)
    expect(balances).toBe(expectedBalances + SYSTEM_SUPPLY) // the reserve and foundation fund are untouched
    // Everything sent across shards has arrived: nothing in flight.
    const sent = report.shards.reduce((sum, s) => sum + BigInt(s.sentOut), 0n)
    const received = report.shards.reduce((sum, s) => sum + BigInt(s.receivedIn), 0n)
    expect(sent).toBe(received)
  })

  it("tampered logs fail the audit, which names the stream and revision: a changed byte, a deleted row, a re-forged hash chain", async () => {
    const [changed, deleted, forged] = ["changed", "deleted", "forged"].map((name) => {
      const dir = makeTempDir(`tamper-${name}`)
      copyDataDir(dataDir, dir)
      return dir
    }) as [string, string, string]
    const byte = changeAmountDigit(changed, "CrossShardSent")
    const hole = middleEvent(deleted, "FeeCharged")
    deleteEvent(deleted, hole.stream, hole.revision)
    const forgery = forgeAmountWithChain(forged, "Transferred")

    const [r1, r2, r3] = await Promise.all([
      runCli(auditArgs(changed, dataDir), { timeoutMs: 60_000 }),
      runCli([...auditArgs(deleted, dataDir), "--json"], { timeoutMs: 60_000 }),
      runCli([...auditArgs(forged, dataDir), "--json"], { timeoutMs: 60_000 })
    ])

    // One byte of a CrossShardSent amount: the hash chain breaks at that very event.
    expect(r1.code).toBe(1)
    expect(r1.stdout).toContain("AUDIT FAILED")
    expect(r1.stdout).toContain(`stream ${byte.stream} revision ${byte.revision} `)
    expect(r1.stdout).toContain("HashMismatch")

    // A row deleted from the middle of a stream: the next revision is missing its predecessor.
    expect(r2.code).toBe(1)
    const gap = JSON.parse(r2.stdout) as { ok: boolean; failure: { stream: string; revision: number; reason: string } }
    expect(gap.ok).toBe(false)
    expect(gap.failure).toMatchObject({ stream: hole.stream, revision: hole.revision + 1, reason: "RevisionGap" })

    // An amount changed and every later hash recomputed: the chain holds, re-execution does not.
    expect(r3.code).toBe(1)
    const mismatch = JSON.parse(r3.stdout) as { ok: boolean; failure: { stream: string; revision: number; reason: string } }
    expect(mismatch.ok).toBe(false)
    expect(mismatch.failure).toMatchObject({ stream: forgery.stream, revision: forgery.revision, reason: "EventMismatch" })
  })
})
