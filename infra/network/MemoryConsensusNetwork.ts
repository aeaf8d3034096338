/**
 * Validators in one process: a hub of unbounded queues, one per connected
 * validator. A validator joins for the life of a Scope (its node's); frames
 * to one that is not connected are lost, as over a real network to a node
 * that is down. With `encode`, every frame goes through its JSON encoding and
 * back, as between processes, and a frame that does not decode is dropped
 * and counted. `inject` delivers raw JSON as from any sender, for tests of
 * what a node does with garbage or strangers.
 *
 * Frames arrive on a later turn of the event loop (one `setImmediate` per
 * burst, in send order), as from a socket. Delivering within the sender's
 * turn would let the validators' fibers hand work to each other in one
 * endless chain of microtasks (Effect's scheduler yields to the event loop
 * only every 2048 rounds, and a round here holds BLS work of tens of ms):
 * timers, worker-thread replies and I/O would then wait for seconds.
 */
import { Effect, Either, Queue } from "effect"
import type { Scope } from "effect"
import type { ConsensusNetwork, Envelope, PeerId } from "./ConsensusNetwork.js"
import { decodeWire, encodeWire, type WireMessage } from "./wire.js"

export interface MemoryNetworkHub {
  /** Connect validator `self` of `count` for the life of the scope. */
  readonly join: (self: PeerId) => Effect.Effect<ConsensusNetwork, never, Scope.Scope>
  /** Deliver a raw frame to `to` as if `from` sent it (decoded like any other). */
  readonly inject: (from: PeerId, to: PeerId, json: string) => Effect.Effect<void>
  /** Frames that did not decode, dropped. */
  readonly malformed: () => number
  /** Frames sent, by tag. */
  readonly sent: () => Readonly<Record<string, number>>
}

export const makeMemoryNetworkHub = (options: { readonly count: number; readonly encode?: boolean }): MemoryNetworkHub => {
  const inboxes = new Map<PeerId, Queue.Queue<Envelope>>()
  let malformed = 0
  const sent: Record<string, number> = {}
  const all = Array.from({ length: options.count }, (_, i) => i)

  // Frames in flight, in send order, handed over on the next turn of the event loop.
  let inFlight: Array<{ readonly to: PeerId; readonly envelope: Envelope }> = []
  const arrive = () => {
    const batch = inFlight
    inFlight = []
    for (const { to, envelope } of batch) {
      const inbox = inboxes.get(to) // looked up on arrival: a validator gone meanwhile misses it
      if (inbox !== undefined) Queue.unsafeOffer(inbox, envelope)
    }
  }
  const post = (to: PeerId, envelope: Envelope) => {
    if (inFlight.length === 0) setImmediate(arrive)
    inFlight.push({ to, envelope })
  }

  const deliverJson = (from: PeerId, to: PeerId, json: string): Effect.Effect<void> =>
    Effect.sync(() => {
      if (!inboxes.has(to)) return
      const decoded = decodeWire(json)
      if (Either.isLeft(decoded)) {
        malformed++
        return
      }
      post(to, { from, message: decoded.right })
    })

  const deliver = (from: PeerId, to: PeerId, message: WireMessage): Effect.Effect<void> => {
    sent[message._tag] = (sent[message._tag] ?? 0) + 1
    if (options.encode === true) return deliverJson(from, to, encodeWire(message))
    return Effect.sync(() => {
      if (inboxes.has(to)) post(to, { from, message })
    })
  }

  const join = (self: PeerId) =>
    Effect.gen(function* () {
      const inbox = yield* Effect.acquireRelease(Queue.unbounded<Envelope>(), (q) =>
        Effect.sync(() => {
          if (inboxes.get(self) === q) inboxes.delete(self)
        }).pipe(Effect.zipRight(Queue.shutdown(q)))
      )
      inboxes.set(self, inbox)
      const peers = all.filter((i) => i !== self)
      const network: ConsensusNetwork = {
        self,
        peers,
        send: (to, message) => deliver(self, to, message),
        broadcast: (message) => Effect.forEach(peers, (to) => deliver(self, to, message), { discard: true }),
        inbound: inbox
      }
      return network
    })

  return {
    join,
    inject: deliverJson,
    malformed: () => malformed,
    sent: () => ({ ...sent })
  }
}
