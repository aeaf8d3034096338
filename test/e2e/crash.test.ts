/**
 * Acknowledged means durable, and cross-shard transfers are exactly-once
 * across crashes (RELIABILITY item 10; the issue: "a transfer to an account on
 * another shard debits at the source and credits at the destination exactly
 * once, by receipt id, even across a crash of either shard").
 *
 * Each round: a burst of cross-shard transfers from several dev accounts
 * (some senders wait for inclusion, some only for admission while a watcher
 * asks tx.get), then `kill -9` of the node at a seeded random moment — the
 * first round right at the first acknowledged inclusion, when receipts are
 * surely in flight. After each restart:
 *
 * - every transfer the node acknowledged as included is still included;
 * - every included cross-shard transfer gets its receipt credited (poll with
 *   a deadline), exactly once: one CrossShardReceived per receipt id, and each
 *   balance equals genesis − what it sent (amount + fee) + what it received,
 *   with a distinct amount per transfer, so a double credit cannot hide;
 * - nonces are exactly the included transfers, in order;
 * - supply is conserved: balances + fees burned = genesis supply;
 * - `topai audit replay` passes, also on the data dir of a node just killed.
 *
 * The seed is in the test name; set E2E_CRASH_SEED to replay another.
 */
import { afterEach, describe, expect, it } from "vitest"
import { Effect } from "effect"
import type { EventView } from "../../src/client/index.js"
import { receiptIdOf } from "../../domain/chain/receipt.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import { DEFAULT_FEE, DEV, DEV_SUPPLY, GENESIS_BALANCE, signTransfer, waitFor } from "./support/chain.js"
import type { DevAccount, SignedTransfer } from "./support/chain.js"
import { openClient } from "./support/client.js"
import type { TestClient } from "./support/client.js"
import { auditArgs, cleanup, makeTempDir, runCli, spawnNode } from "./support/processes.js"
import type { NodeProcess } from "./support/processes.js"
import { mulberry32 } from "../support/mulberry32.js"

const SEED = Number(process.env["E2E_CRASH_SEED"] ?? 20_261_127)
const ROUNDS = 3
/** Senders from both transfer shards; each sends TXS_PER_SENDER transfers to the other shard per round. */
const SENDERS: ReadonlyArray<DevAccount> = [DEV[0]!, DEV[2]!, DEV[1]!, DEV[4]!, DEV[5]!]
const TXS_PER_SENDER = 10
/** Senders with an even position wait for inclusion on each submit; the others only for admission. */
const waitsForInclusion = (senderPosition: number) => senderPosition % 2 === 0
const KILL_DELAY_MS_MAX = 1_500
const ACK_POLL_MS = 20
const CALL_DURING_BURST_TIMEOUT_MS = 5_000
const DELIVERY_TIMEOUT_MS = 15_000
/** A hang guard: the test takes ~15 s on an idle machine, much longer when others load the cores. */
const CRASH_TEST_TIMEOUT_MS = 90_000
/** Round 0 kills at the first acknowledged inclusion, or after this. */
const FIRST_ACK_WAIT_MS_MAX = 10_000


interface Sent {
  readonly tx: SignedTransfer
  readonly round: number
}

/** Receivers on the other shard, taken in turn. */
const receiversOf = (sender: DevAccount) => DEV.filter((d) => d.shard !== sender.shard)

afterEach(cleanup)

describe(`crash: kill -9 during cross-shard bursts (seed ${SEED})`, () => {
  it(
    `${ROUNDS} rounds of ${SENDERS.length * TXS_PER_SENDER} transfers: acknowledged stays, receipts credited exactly once, supply conserved, audit passes`,
    async () => {
      const random = mulberry32(SEED)
      const dataDir = makeTempDir("crash")
      const sent = new Map<string, Sent>()
      const acked = new Set<string>()
      const killDelays: Array<number> = []
      let node: NodeProcess | undefined
      let c: TestClient | undefined
      const context = () => `seed ${SEED}, kill delays ${JSON.stringify(killDelays)} ms`

      const restart = async () => {
        node = await spawnNode({ dataDir })
        c = await openClient(node.url)
        return c
      }

      /** After a restart: what the node says about every transfer ever sent, checked against the model. */
      const verify = async (c: TestClient) => {
        const included: Array<Sent> = []
        for (const s of sent.values()) {
          const view = await c.run(c.client.tx.get({ hash: s.tx.hash }).pipe(Effect.either))
          if (view._tag === "Left") {
            expect(view.left._tag, context()).toBe("NotFound")
            expect(acked.has(s.tx.hash), `acknowledged ${s.tx.hash} lost (${context()})`).toBe(false)
            continue
          }
          expect(view.right.status, context()).toBe("included")
          expect(view.right.receiptId).toBe(receiptIdOf(s.tx.hash as Hash32))
          included.push(s)
        }
        // Every included transfer's receipt is credited at its destination.
        for (const s of included) {
          await waitFor(
            `receipt of ${s.tx.hash} delivered (${context()})`,
            async () => ((await c.run(c.client.tx.get({ hash: s.tx.hash }))).receiptDelivered === true ? true : undefined),
            { timeoutMs: DELIVERY_TIMEOUT_MS }
          )
        }
        // Exactly once, by the events: one CrossShardSent and one CrossShardReceived per included receipt, none for others.
        const all: ReadonlyArray<EventView> = await c.run(c.client.events.read({ from: 0, limit: 10_000 }))
        expect(all.length).toBeLessThan(10_000)
        const count = (type: string) => {
          const n = new Map<string, number>()
          for (const e of all) {
            if (e.type !== type) continue
            const id = (e.data as { receiptId: string }).receiptId
            n.set(id, (n.get(id) ?? 0) + 1)
          }
          return n
        }
        const sentEvents = count("CrossShardSent")
        const receivedEvents = count("CrossShardReceived")
        const includedIds = included.map((s) => receiptIdOf(s.tx.hash as Hash32))
        expect([...sentEvents.keys()].sort()).toEqual([...includedIds].sort())
        expect([...receivedEvents.keys()].sort()).toEqual([...includedIds].sort())
        expect([...sentEvents.values(), ...receivedEvents.values()].every((n) => n === 1), context()).toBe(true)

        // Balances and nonces: exactly genesis plus the included transfers; supply conserved.
        let balances = 0n
        let burned = 0n
        for (const d of DEV) {
          const info = await c.run(c.client.account.get({ address: d.address }))
          const out = included.filter((s) => s.tx.from === d.address)
          const into = included.filter((s) => s.tx.to === d.address)
          const expected =
            GENESIS_BALANCE - out.reduce((sum, s) => sum + s.tx.amount + s.tx.fee, 0n) + into.reduce((sum, s) => sum + s.tx.amount, 0n)
          expect({ account: d.index, balance: info.balance }, context()).toEqual({ account: d.index, balance: expected })
          expect(info.nonce).toBe(BigInt(out.length))
          expect(out.map((s) => s.tx.nonce).sort((a, b) => Number(a - b))).toEqual(out.map((_, i) => BigInt(i)))
          expect(info.pendingNonce).toBe(info.nonce)
          balances += info.balance
          burned += info.nonce * DEFAULT_FEE
        }
        expect(balances + burned, context()).toBe(DEV_SUPPLY)
        return { included: included.length, burned }
      }

      try {
        for (let round = 0; round < ROUNDS; round++) {
          const client = await restart()
          if (round > 0) await verify(client)
          const live = node!

          // This round's transfers, signed up front from each sender's next nonce.
          const chains = await Promise.all(
            SENDERS.map(async (sender, position) => {
              const info = await client.run(client.client.account.get({ address: sender.address }))
              const receivers = receiversOf(sender)
              return Array.from({ length: TXS_PER_SENDER }, (_, k) => {
                // Distinct in every round: round, sender and position in the chain.
                const amount = BigInt((round + 1) * 1_000_000 + (position + 1) * 1_000 + k + 1)
                const tx = signTransfer({ key: sender.key, to: receivers[k % receivers.length]!.address, amount, nonce: info.nonce + BigInt(k) })
                sent.set(tx.hash, { tx, round })
                return tx
              })
            })
          )

          let dead = false
          let firstAck: () => void = () => {}
          const acknowledged = new Promise<void>((resolve) => (firstAck = resolve))
          const ack = (hash: string) => {
            acked.add(hash)
            firstAck()
          }
          const rejections: Array<string> = []
          const call = <A, E>(effect: Effect.Effect<A, E>) =>
            Effect.runPromise(Effect.either(Effect.timeout(effect, CALL_DURING_BURST_TIMEOUT_MS)))

          const admitted = new Set<string>()
          const submitChain = async (txs: ReadonlyArray<SignedTransfer>, wait: boolean) => {
            for (const tx of txs) {
              const r = await call(client.client.tx.submit({ raw: tx.raw, wait }))
              if (r._tag === "Left") {
                if (r.left._tag === "TransactionRejected") rejections.push(`${tx.hash}: ${r.left.reason} ${r.left.detail}`)
                return // the node is gone (or refused: reported below)
              }
              admitted.add(tx.hash)
              if (r.right.status === "included") ack(tx.hash)
            }
          }
          // Admitted-only transfers are acknowledged as included when tx.get says so.
          const watch = async () => {
            while (!dead) {
              for (const hash of admitted) {
                if (acked.has(hash) || dead) continue
                const r = await call(client.client.tx.get({ hash }))
                if (r._tag === "Right" && r.right.status === "included") ack(hash)
              }
              await new Promise((resolve) => setTimeout(resolve, ACK_POLL_MS))
            }
          }

          const burst = Promise.all([...chains.map((txs, position) => submitChain(txs, waitsForInclusion(position))), watch()])
          const delay = round === 0 ? 0 : Math.floor(random() * KILL_DELAY_MS_MAX)
          killDelays.push(delay)
          if (round === 0) await Promise.race([acknowledged, new Promise((resolve) => setTimeout(resolve, FIRST_ACK_WAIT_MS_MAX))])
          else await new Promise((resolve) => setTimeout(resolve, delay))
          const exit = await live.stop("SIGKILL")
          dead = true
          expect(exit.signal).toBe("SIGKILL")
          await burst
          await client.close()
          expect(rejections, context()).toEqual([])
        }

        // The auditor may look at a data dir whose node was just killed.
        const afterKill = await runCli([...auditArgs(dataDir), "--json"], { timeoutMs: 60_000 })
        expect(afterKill.code, afterKill.stderr).toBe(0)
        expect((JSON.parse(afterKill.stdout) as { ok: boolean }).ok).toBe(true)

        const client = await restart()
        const { included, burned } = await verify(client)
        // The rounds did something: most transfers made it, and some were acknowledged before a kill.
        expect(included, context()).toBeGreaterThan(0)
        expect(acked.size, context()).toBeGreaterThan(0)

        await client.close()
        expect((await node!.stop("SIGINT")).code).toBe(0)
        const audit = await runCli([...auditArgs(dataDir), "--json"], { timeoutMs: 60_000 })
        expect(audit.code, audit.stderr).toBe(0)
        const report = JSON.parse(audit.stdout) as { ok: boolean; shards: Array<{ burned: string; sentOut: string; receivedIn: string }> }
        expect(report.ok).toBe(true)
        expect(report.shards.reduce((sum, s) => sum + BigInt(s.burned), 0n)).toBe(burned)
        const sentOut = report.shards.reduce((sum, s) => sum + BigInt(s.sentOut), 0n)
        expect(report.shards.reduce((sum, s) => sum + BigInt(s.receivedIn), 0n)).toBe(sentOut)
        console.info(`crash test: ${context()}; ${sent.size} sent, ${included} included, ${acked.size} acknowledged before a kill`)
      } finally {
        await c?.close().catch(() => {})
      }
    },
    CRASH_TEST_TIMEOUT_MS
  )
})
