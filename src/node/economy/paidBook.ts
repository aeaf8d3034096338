/**
 * What the system accounts have paid, read from the shards' events: per
 * (paying account, recipient), what arrived and what is still in flight.
 *
 * A payout to an address on the paying account's own shard is one
 * `Transferred`: it arrives at once. One to another shard is debited at its
 * `CrossShardSent` and credited only at the destination shard's
 * `CrossShardReceived`, a block (on a BFT chain, a certified block: seconds)
 * later. Until then it is in flight: it must not be paid again (it left the
 * account) and it is not paid yet (the recipient's balance does not hold it).
 * The two events may reach this log in either order (the destination shard's
 * block may be applied first), so an early arrival is remembered until its
 * send is read.
 */
import type { PayoutSource } from "../../../domain/economics/accounts.js"
import type { RecordedEvent } from "../../../infra/eventstore/EventStore.js"

type Data = { readonly [k: string]: unknown }

interface InFlight {
  readonly source: PayoutSource
  readonly to: string
  readonly amount: bigint
}

type Book = Map<PayoutSource, Map<string, bigint>>

const add = (book: Book, source: PayoutSource, to: string, amount: bigint): void => {
  const m = book.get(source) ?? new Map<string, bigint>()
  book.set(source, m.set(to, (m.get(to) ?? 0n) + amount))
}

const sumOf = (m: ReadonlyMap<string, bigint> | undefined): bigint => [...(m?.values() ?? [])].reduce((a, b) => a + b, 0n)

/** `sourceOf`: the paying account of an address, if it is one. */
export const makePaidBook = (sourceOf: (address: string) => PayoutSource | undefined) => {
  const arrived: Book = new Map()
  const inFlight = new Map<string, InFlight>() // receipt id → payout sent, not received yet
  const arrivedFirst = new Set<string>() // receipt ids received before their send was read

  /** Note one event of a `shard-*` stream (others are ignored). */
  const note = (e: RecordedEvent): void => {
    if (e.type !== "Transferred" && e.type !== "CrossShardSent" && e.type !== "CrossShardReceived") return
    const d = e.data as Data
    const source = sourceOf(d["from"] as string)
    if (source === undefined) return
    const to = d["to"] as string
    const amount = BigInt(d["amount"] as string)
    const receiptId = d["receiptId"] as string
    switch (e.type) {
      case "Transferred":
        return add(arrived, source, to, amount)
      case "CrossShardSent":
        if (arrivedFirst.delete(receiptId)) return
        inFlight.set(receiptId, { source, to, amount })
        return
      case "CrossShardReceived":
        add(arrived, source, to, amount)
        if (!inFlight.delete(receiptId)) arrivedFirst.add(receiptId)
        return
    }
  }

  const inFlightOf = (source: PayoutSource, to?: string): bigint => {
    let sum = 0n
    for (const f of inFlight.values()) if (f.source === source && (to === undefined || f.to === to)) sum += f.amount
    return sum
  }

  return {
    note,
    /** What `source` paid `to` that `to` holds. */
    paid: (source: PayoutSource, to: string): bigint => arrived.get(source)?.get(to) ?? 0n,
    /** What left `source` for `to`: arrived or in flight (never to be paid again). */
    sent: (source: PayoutSource, to: string): bigint => (arrived.get(source)?.get(to) ?? 0n) + inFlightOf(source, to),
    /** Totals of `source`: arrived, and in flight. */
    paidFrom: (source: PayoutSource): bigint => sumOf(arrived.get(source)),
    inFlightFrom: (source: PayoutSource): bigint => inFlightOf(source)
  }
}

export type PaidBook = ReturnType<typeof makePaidBook>
