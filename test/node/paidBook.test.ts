/**
 * What the economy counts as paid (src/node/economy/paidBook.ts): a payout
 * to another shard is in flight from its `CrossShardSent` until the
 * destination shard's `CrossShardReceived` — not paid yet (the recipient's
 * balance does not hold it), and not to be paid again (it left the account).
 * This is the devnet's "doubled statement": the economy called a payout paid
 * at its send, so a worker whose last payout was still between shards held
 * half of what its statement and the supply's `paid` said. Events are the
 * chain's own, encoded as the store keeps them.
 */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { Schema } from "effect"
import { CrossShardReceived, CrossShardSent, ShardEvent, Transferred } from "../../domain/chain/events.js"
import type { Hash32 } from "../../domain/chain/hash.js"
import type { Address } from "../../domain/chain/keys.js"
import { receiptIdOf } from "../../domain/chain/receipt.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { RESERVE_ADDRESS } from "../../domain/economics/accounts.js"
import type { RecordedEvent } from "../../infra/eventstore/EventStore.js"
import { makePaidBook } from "../../src/node/economy/paidBook.js"

const WORKER = "0x00000000000000000000000000000000000000aa" as Address
const OTHER = "0x00000000000000000000000000000000000000bb" as Address
const encode = Schema.encodeSync(ShardEvent)
const txHash = (i: number): Hash32 => `0x${(i + 1).toString(16).padStart(64, "0")}` as Hash32

let position = 0
const recorded = (shard: number, e: ShardEvent): RecordedEvent => {
  const { _tag, ...data } = encode(e) as { readonly _tag: string }
  return { stream: `shard-${shard}`, revision: position, position: ++position, id: `${position}`, type: _tag, data, metadata: {}, prevHash: "", hash: "" }
}
const receipt = (i: number, from: Address, to: Address, amount: bigint) => ({
  receiptId: receiptIdOf(txHash(i)),
  sourceShard: 2 as ShardId,
  destShard: 1 as ShardId,
  from,
  to,
  amount,
  txHash: txHash(i)
})
const sent = (i: number, amount: bigint, from: Address = RESERVE_ADDRESS) => recorded(2, new CrossShardSent(receipt(i, from, WORKER, amount)))
const received = (i: number, amount: bigint, from: Address = RESERVE_ADDRESS) => recorded(1, new CrossShardReceived(receipt(i, from, WORKER, amount)))

const book = () => makePaidBook((address) => (address === RESERVE_ADDRESS ? "reserve" : undefined))

describe("the paid book", () => {
  it("a payout to another shard is in flight, not paid, until its receipt is received; it is sent all along", () => {
    const b = book()
    b.note(sent(1, 3n))
    expect({ paid: b.paid("reserve", WORKER), sent: b.sent("reserve", WORKER), inFlight: b.inFlightFrom("reserve") }).toEqual({ paid: 0n, sent: 3n, inFlight: 3n })
    b.note(received(1, 3n))
    expect({ paid: b.paid("reserve", WORKER), sent: b.sent("reserve", WORKER), inFlight: b.inFlightFrom("reserve") }).toEqual({ paid: 3n, sent: 3n, inFlight: 0n })
    expect(b.paidFrom("reserve")).toBe(3n)
  })

  it("a payout on the paying account's own shard arrives at once; other senders' transfers are not payouts", () => {
    const b = book()
    b.note(recorded(2, new Transferred({ txHash: txHash(1), from: RESERVE_ADDRESS, to: WORKER, amount: 5n })))
    b.note(recorded(2, new Transferred({ txHash: txHash(2), from: OTHER, to: WORKER, amount: 7n })))
    b.note(sent(3, 11n, OTHER))
    b.note(received(3, 11n, OTHER))
    expect({ paid: b.paid("reserve", WORKER), sent: b.sent("reserve", WORKER), inFlight: b.inFlightFrom("reserve") }).toEqual({ paid: 5n, sent: 5n, inFlight: 0n })
  })

  it("property: in any order the two shards' events reach the log, paid is what was received and sent is what left, each once", () => {
    const payouts = fc.array(fc.record({ amount: fc.bigInt({ min: 1n, max: 10n ** 20n }), delivered: fc.boolean(), receivedFirst: fc.boolean() }), { maxLength: 20 })
    fc.assert(
      fc.property(payouts, fc.infiniteStream(fc.boolean()), (ps, coin) => {
        // Each payout's two events in their order; the payouts interleaved by the coin.
        const queues = ps.map((p, i) => {
          const s = sent(i, p.amount)
          const r = received(i, p.amount)
          return !p.delivered ? [s] : p.receivedFirst ? [r, s] : [s, r]
        })
        const b = book()
        const coins = coin[Symbol.iterator]()
        while (queues.some((q) => q.length > 0)) {
          const live = queues.filter((q) => q.length > 0)
          const pick = live[coins.next().value ? 0 : live.length - 1]!
          b.note(pick.shift()!)
        }
        const total = ps.reduce((a, p) => a + p.amount, 0n)
        const arrived = ps.filter((p) => p.delivered).reduce((a, p) => a + p.amount, 0n)
        expect(b.paid("reserve", WORKER)).toBe(arrived)
        expect(b.sent("reserve", WORKER)).toBe(total)
        expect(b.inFlightFrom("reserve")).toBe(total - arrived)
      })
    )
  })
})
