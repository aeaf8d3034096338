/**
 * The network between validators, as one node sees it: send a frame to one
 * peer, to all of them, and take what arrives. Peers are named by their
 * index in the genesis validator list (their committee seat). The transport
 * authenticates `from` (the in-memory one by construction; a WebSocket one
 * by the key the peer proved when it connected and a signature on every frame) and hands over only frames that decoded: anything
 * malformed, oversized or from an unknown peer is dropped and counted there.
 *
 * Implementations: `MemoryConsensusNetwork.ts` (validators in one process,
 * optionally through the JSON encoding); a WebSocket one over @effect/rpc
 * between processes slots in behind the same interface.
 */
import type { Effect, Queue } from "effect"
import type { WireMessage } from "./wire.js"

export type PeerId = number

export interface Envelope {
  readonly from: PeerId
  readonly message: WireMessage
}

export interface ConsensusNetwork {
  readonly self: PeerId
  /** Every validator but this one. */
  readonly peers: ReadonlyArray<PeerId>
  /** Best effort: a frame to a peer that is down is lost (the protocol retries what matters). */
  readonly send: (to: PeerId, message: WireMessage) => Effect.Effect<void>
  readonly broadcast: (message: WireMessage) => Effect.Effect<void>
  readonly inbound: Queue.Dequeue<Envelope>
}
