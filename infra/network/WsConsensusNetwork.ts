/**
 * Validators as separate processes: a `ConsensusNetwork` over @effect/rpc on
 * WebSocket (JSON frames).
 *
 * Serving. Each validator serves `ConsensusRpcs` on its own consensus
 * address (`ws://host:port/consensus`, apart from the node's client RPC):
 * `consensus.frames` takes a batch of signed frames, `network.stats` returns
 * this node's counters.
 *
 * Connections. A connection carries frames only once its peer proved its
 * validator key on it: `consensus.hello` gives the connection a fresh random
 * nonce, `consensus.auth` takes the peer's seat, public key and signature
 * over `sha256("topai/consensus-auth/v1\n" ‖ JSON[chainId, serverSeat, peerSeat, nonce])`
 * and binds the connection to that seat (a refusal is a typed `AuthRefused`,
 * counted `authFailed`). Frames on a connection that proved nothing are
 * refused (`authenticated: false`, counted `unauthenticated`; the dialler
 * proves its key again and resends), and a frame whose `from` is not the
 * connection's seat is dropped (`wrongConnection`). Frames stay signed one
 * by one: the signature and sequence still bind each frame to its sender.
 *
 * Fairness. Each peer has a token bucket (`rateLimited` past it), its own
 * verification queue and fiber (`overloaded` when full) and its own share of
 * the messages waiting for the consumer (`inboundFull`); a pump hands the
 * peers' messages over in turn, so a peer that floods loses its own frames
 * (counted per peer: `peers[i].droppedInbound`) and the others' go on. Dialling. It dials every peer as an RPC client; the
 * socket protocol reconnects by itself with capped exponential back-off
 * (`reconnectMaxMs`), and the per-peer sender retries with the same cap.
 *
 * Frames and their signature (secp256k1, the validator's account key: the
 * genesis names each validator's address). A frame is
 * `{chainId, from, to, session, seq, payload, publicKey, signature}` where
 * `to` is a peer index or `"*"` (a broadcast, signed once for all peers),
 * `payload` is the JSON array of the WireMessages it carries, and the
 * signature is compact low-s ECDSA over
 * `sha256("topai/consensus-frame/v1\n" ‖ JSON[chainId, from, to, session, seq] ‖ "\n" ‖ payload)`.
 * The receiver checks, in this order: the peer's rate, the frame decodes (else `malformed`),
 * its payload is at most `maxFrameBytes` (`oversized`), the chain id
 * (`wrongChain`), that `from` is another committee seat (`unknownSender`),
 * that it is the connection's seat (`wrongConnection`), that it is addressed to this node or to all (`misrouted`), that the public
 * key's address is a committee member's (`unknownKey`) and `from`'s
 * (`spoofedSender`), the signature (`badSignature`, checked by the injected
 * verifier: the node's worker threads), then freshness: `session` is the
 * sender's start time (ms) and `seq` counts every frame it signed since, so
 * a frame whose (session, seq) is not above the last accepted from that
 * sender is a replay (`replayed`). Last the payload must decode into
 * WireMessages (`malformed`). Bytes that are not JSON or not an RPC request
 * of this group are dropped by the serialization before the RPC server sees
 * them (`garbage`, `oversized`). Nothing a peer sends can fail the node:
 * everything is counted and dropped.
 *
 * Back-pressure never reaches the consensus fiber: `send`/`broadcast` offer
 * to a bounded queue (full: dropped, `outbound.overflow`) and return; one
 * signer fiber takes what waits, encodes it and signs it into frames: only
 * broadcasts, one broadcast frame; a mix, one frame per peer holding its
 * unicasts and the broadcasts in their order (so each receiver sees the
 * sender's messages in order, at one signature per peer per batch), and
 * appends them to each destination's
 * bounded ring of frames, which drops its oldest frame when full
 * (`peers[i].droppedFrames`: a peer that is down); one sender fiber per
 * peer sends its ring in batches, one call in flight, removing frames only
 * once the peer acknowledged them. Inbound, see Fairness above.
 *
 * Limits of this design, for the record: a receiver that restarts forgets
 * the last sequence numbers, so a frame recorded earlier in the sender's
 * current session can be replayed to it once (consensus messages are
 * idempotent and individually signed by BLS where it matters); sessions
 * assume the sender's clock does not go back across its restarts.
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer, NodeSocket } from "@effect/platform-node"
import { Rpc, RpcClient, RpcGroup, RpcSerialization, RpcServer } from "@effect/rpc"
import { Clock, Context, Duration, Effect, Either, Layer, Queue, Schedule, Schema } from "effect"
import type { Scope } from "effect"
import { sha256 } from "../../domain/chain/hash.js"
import { bytesToHex, hexToBytes } from "../../domain/chain/hex.js"
import { PublicKey, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, verifyDigest } from "../../domain/chain/keys.js"
import type { Address, PrivateKey } from "../../domain/chain/keys.js"
import type { ConsensusNetwork, Envelope, PeerId } from "./ConsensusNetwork.js"
import { WireMessage, encodeWire } from "./wire.js"

// ---------------------------------------------------------------- limits and defaults

export const CONSENSUS_PATH = "/consensus"
/** The most payload bytes one frame may carry (a sync response of 64 full blocks fits). */
export const FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024
/** The most frames in one `consensus.frames` call. */
export const FRAMES_PER_CALL_MAX = 256
/** The most messages in one frame. */
export const MESSAGES_PER_FRAME_MAX = 1024
export const PEER_QUEUE_FRAMES_DEFAULT = 1024
export const OUTBOUND_QUEUE_DEFAULT = 8192
export const INBOUND_QUEUE_DEFAULT = 16_384
/** Frames of one peer waiting for verification. */
export const VERIFY_QUEUE_DEFAULT = 1024
/** Frames one peer may send per second, and in one burst (a token bucket): beyond, dropped (`rateLimited`). */
export const PEER_FRAMES_PER_SECOND_DEFAULT = 2_000
export const PEER_FRAMES_BURST_DEFAULT = 4_096
/** Connections that asked for a challenge and have not answered it yet (the oldest is forgotten). */
const CHALLENGES_MAX = 256
const AUTH_NONCE_BYTES = 32
export const RECONNECT_MAX_MS_DEFAULT = 1_000
const RECONNECT_MIN_MS = 50
const CALL_TIMEOUT_MS = 10_000
/** A call's frames stop growing past this many payload bytes (one large frame still goes alone). */
const CALL_BYTES_SOFT_MAX = 1024 * 1024

const FRAME_DOMAIN = "topai/consensus-frame/v1\n"
const AUTH_DOMAIN = "topai/consensus-auth/v1\n"

// ---------------------------------------------------------------- the frame

const Int = Schema.Int.pipe(Schema.nonNegative())
const Hex = (bytes: number) => Schema.String.pipe(Schema.pattern(new RegExp(`^0x[0-9a-f]{${2 * bytes}}$`)))

export const BROADCAST = "*" as const
export const FrameTarget = Schema.Union(Int, Schema.Literal(BROADCAST))
export type FrameTarget = typeof FrameTarget.Type

/** A signed frame as it travels (JSON). */
export const SignedFrame = Schema.Struct({
  chainId: Schema.String.pipe(Schema.pattern(/^(0|[1-9][0-9]{0,30})$/)),
  from: Int,
  to: FrameTarget,
  session: Int,
  seq: Int,
  payload: Schema.String,
  publicKey: Hex(PUBLIC_KEY_BYTES),
  signature: Hex(SIGNATURE_BYTES)
})
export type SignedFrame = typeof SignedFrame.Type
const decodeFrame = Schema.decodeUnknownEither(SignedFrame)
const decodeMessage = Schema.decodeUnknownEither(WireMessage)

/** What a frame's signature covers. */
export const frameDigest = (f: {
  readonly chainId: string
  readonly from: number
  readonly to: FrameTarget
  readonly session: number
  readonly seq: number
  readonly payload: string
}): Uint8Array => sha256(FRAME_DOMAIN, JSON.stringify([f.chainId, f.from, f.to, f.session, f.seq]), "\n", f.payload)

/** Sign a frame (exported for tests that play a raw or hostile peer). */
export const signFrame = (
  key: PrivateKey,
  f: { readonly chainId: bigint; readonly from: number; readonly to: FrameTarget; readonly session: number; readonly seq: number; readonly payload: string }
): SignedFrame => {
  const body = { chainId: f.chainId.toString(), from: f.from, to: f.to, session: f.session, seq: f.seq, payload: f.payload }
  return { ...body, publicKey: key.publicKey.hex, signature: bytesToHex(key.signDigest(frameDigest(body))) }
}

/** The payload of a frame carrying `messages` (each already JSON). */
export const framePayload = (jsons: ReadonlyArray<string>): string => `[${jsons.join(",")}]`

/**
 * What a peer signs to prove its key on a connection: the server's fresh
 * nonce, bound to the chain, the server's seat and the seat it claims.
 */
export const authDigest = (a: { readonly chainId: string; readonly server: number; readonly from: number; readonly nonce: string }): Uint8Array =>
  sha256(AUTH_DOMAIN, JSON.stringify([a.chainId, a.server, a.from, a.nonce]))

/** The answer to a challenge (exported for tests that play a raw or hostile peer). */
export const signAuth = (key: PrivateKey, a: { readonly chainId: bigint; readonly server: number; readonly from: number; readonly nonce: string }) => ({
  from: a.from,
  publicKey: key.publicKey.hex,
  signature: bytesToHex(key.signDigest(authDigest({ ...a, chainId: a.chainId.toString() })))
})

// ---------------------------------------------------------------- the RPC group

export const InboundDrop = [
  /** Frames on a connection whose peer has not proven its key (`consensus.auth`). */
  "unauthenticated",
  /** Challenge answers that did not prove a committee member's key. */
  "authFailed",
  /** Frames whose `from` is not the seat the connection proved. */
  "wrongConnection",
  /** Frames beyond the peer's rate. */
  "rateLimited",
  "garbage",
  "malformed",
  "oversized",
  "wrongChain",
  "unknownSender",
  "misrouted",
  "unknownKey",
  "spoofedSender",
  "badSignature",
  "replayed",
  "overloaded",
  "inboundFull"
] as const
export type InboundDrop = (typeof InboundDrop)[number]

const Count = Schema.Int.pipe(Schema.nonNegative())

export const PeerStats = Schema.Struct({
  peer: Count,
  url: Schema.String,
  connected: Schema.Boolean,
  framesSent: Count,
  messagesSent: Count,
  /** Frames waiting for the peer. */
  queued: Count,
  /** Frames dropped (oldest first) because the peer's queue was full. */
  droppedFrames: Count,
  droppedMessages: Count,
  /** Calls that failed (peer down, timeout); their frames stay queued. */
  sendFailures: Count,
  /** Frames from this peer accepted for verification. */
  framesReceived: Count,
  /** Frames from this peer dropped at its own limits: its rate, its verification queue, its share of the inbound queue. */
  droppedInbound: Count
})
export type PeerStats = typeof PeerStats.Type

export const NetworkStats = Schema.Struct({
  self: Count,
  session: Count,
  framesReceived: Count,
  messagesReceived: Count,
  dropped: Schema.Record({ key: Schema.Literal(...InboundDrop), value: Count }),
  outbound: Schema.Struct({
    framesSigned: Count,
    messagesQueued: Count,
    /** Messages dropped: the signer's queue was full. */
    overflow: Count,
    /** Messages larger than a frame may be, or that failed to encode. */
    unsendable: Count
  }),
  peers: Schema.Array(PeerStats)
})
export type NetworkStats = typeof NetworkStats.Type

export const AuthChallenge = Schema.Struct({ chainId: Schema.String, server: Count, nonce: Schema.String })
export const AuthAnswer = Schema.Struct({ from: Int, publicKey: Hex(PUBLIC_KEY_BYTES), signature: Hex(SIGNATURE_BYTES) })
const decodeAuth = Schema.decodeUnknownEither(AuthAnswer)

export class AuthRefused extends Schema.TaggedError<AuthRefused>()("AuthRefused", {
  reason: Schema.Literal("NoChallenge", "Malformed", "UnknownSeat", "WrongKey", "BadSignature"),
  detail: Schema.String
}) {
  override get message() {
    return `consensus connection not authenticated (${this.reason}): ${this.detail}`
  }
}

export class ConsensusRpcs extends RpcGroup.make(
  /** A fresh nonce for this connection: the peer signs it with its validator key (`consensus.auth`). */
  Rpc.make("consensus.hello", { success: AuthChallenge }),
  /** Proves the connection's peer: from then on it carries that seat's frames only. */
  Rpc.make("consensus.auth", { payload: Schema.Unknown, success: Schema.Struct({ seat: Count }), error: AuthRefused }),
  /**
   * Signed frames from a peer; acknowledged once queued (nothing tells a sender what was dropped), or
   * `authenticated: false` (none taken): the connection has not proven its peer, the sender authenticates and resends.
   */
  Rpc.make("consensus.frames", { payload: Schema.Unknown, success: Schema.Struct({ authenticated: Schema.Boolean }) }),
  Rpc.make("network.stats", { success: NetworkStats })
) {}

const RPC_TAGS = new Set<string>(["consensus.hello", "consensus.auth", "consensus.frames", "network.stats"])
const CLIENT_MESSAGE_TAGS = new Set<string>(["Request", "Ping", "Eof", "Ack", "Interrupt"])

/**
 * JSON framing that drops, and counts, what is not for us before the RPC
 * server sees it: oversized messages, bytes that are not JSON, JSON that is
 * not a request of this group. Client and server use the same JSON framing.
 */
const guardedJson = (maxBytes: number, drop: (reason: InboundDrop) => void): Layer.Layer<RpcSerialization.RpcSerialization> =>
  Layer.succeed(
    RpcSerialization.RpcSerialization,
    RpcSerialization.RpcSerialization.of({
      contentType: RpcSerialization.json.contentType,
      includesFraming: RpcSerialization.json.includesFraming,
      unsafeMake: () => {
        const inner = RpcSerialization.json.unsafeMake()
        return {
          encode: inner.encode,
          decode: (data) => {
            if (data.length > maxBytes) {
              drop("oversized")
              return []
            }
            let items: ReadonlyArray<unknown>
            try {
              items = inner.decode(data)
            } catch {
              drop("garbage")
              return []
            }
            return items.filter((item) => {
              const ok =
                typeof item === "object" &&
                item !== null &&
                CLIENT_MESSAGE_TAGS.has((item as { _tag?: unknown })._tag as string) &&
                ((item as { _tag: string })._tag !== "Request" || RPC_TAGS.has((item as { tag?: unknown }).tag as string))
              if (!ok) drop("garbage")
              return ok
            })
          }
        }
      }
    })
  )

// ---------------------------------------------------------------- options

export interface PeerEndpoint {
  readonly index: PeerId
  /** `ws://host:port/consensus` */
  readonly url: string
}

export interface FrameVerifier {
  /** Whether the compact low-s signature over `digest` verifies for the compressed public key. */
  readonly verifyDigest: (signed: {
    readonly digest: Uint8Array
    readonly publicKey: { readonly bytes: Uint8Array }
    readonly signature: Uint8Array
  }) => Effect.Effect<boolean>
}

/** noble in the calling thread (the node passes its SignatureVerifier: worker threads). */
export const inThreadFrameVerifier: FrameVerifier = {
  verifyDigest: (signed) =>
    Effect.sync(() => {
      const key = PublicKey.fromBytes(signed.publicKey.bytes)
      return Either.isRight(key) && verifyDigest(signed.signature, signed.digest, key.right)
    })
}

export interface WsConsensusNetworkOptions {
  readonly chainId: bigint
  /** The committee in seat order (the genesis validators): frames are checked against these addresses. */
  readonly validators: ReadonlyArray<{ readonly address: Address }>
  readonly self: PeerId
  /** This validator's account key; its address must be `validators[self].address`. */
  readonly key: PrivateKey
  /** Where to serve `ConsensusRpcs` (port 0: any free port, see `address`). */
  readonly listen: { readonly host: string; readonly port: number }
  readonly peers: ReadonlyArray<PeerEndpoint>
  readonly verifier?: FrameVerifier | undefined
  readonly maxFrameBytes?: number | undefined
  readonly peerQueueFrames?: number | undefined
  readonly outboundQueue?: number | undefined
  /** Messages waiting for the consumer; each peer may hold its share (`inboundQueue / peers`) of them. */
  readonly inboundQueue?: number | undefined
  /** Frames of one peer waiting for verification. */
  readonly verifyQueue?: number | undefined
  readonly peerFramesPerSecond?: number | undefined
  readonly peerFramesBurst?: number | undefined
  readonly reconnectMaxMs?: number | undefined
  /** Log the counters this often when a drop counter moved since the last look (0: never). Default 10 s. */
  readonly logIntervalMs?: number | undefined
}

export interface WsConsensusNetwork extends ConsensusNetwork {
  /** Where the consensus RPC listens (the real port when `listen.port` was 0). */
  readonly address: { readonly host: string; readonly port: number }
  readonly url: string
  readonly stats: Effect.Effect<NetworkStats>
}

export class WsNetworkError extends Schema.TaggedError<WsNetworkError>()("WsNetworkError", { detail: Schema.String }) {
  override get message() {
    return this.detail
  }
}

// ---------------------------------------------------------------- a ring of frames per peer

interface QueuedFrame {
  readonly frame: SignedFrame
  readonly messages: number
  readonly bytes: number
}

/** A bounded FIFO that drops its oldest entry when full; entries are removed by position once sent. */
class FrameRing {
  private items: Array<QueuedFrame> = []
  /** The absolute position of items[0]. */
  private head = 0
  droppedFrames = 0
  droppedMessages = 0
  private readonly latch = Effect.unsafeMakeLatch(false)
  constructor(private readonly capacity: number) {}
  get size() {
    return this.items.length
  }
  push(item: QueuedFrame) {
    if (this.items.length >= this.capacity) {
      const dropped = this.items.shift()!
      this.head++
      this.droppedFrames++
      this.droppedMessages += dropped.messages
    }
    this.items.push(item)
    this.latch.unsafeOpen()
  }
  /** Waits for a non-empty ring. */
  readonly awaitItems: Effect.Effect<void> = Effect.suspend(() => {
    if (this.items.length > 0) return Effect.void
    this.latch.unsafeClose()
    return this.latch.await
  })
  /** The oldest frames, up to the limits, and the position after them. */
  peek(maxFrames: number, softBytes: number): { readonly batch: ReadonlyArray<QueuedFrame>; readonly end: number } {
    const batch: Array<QueuedFrame> = []
    let bytes = 0
    for (const item of this.items) {
      if (batch.length >= maxFrames || (batch.length > 0 && bytes + item.bytes > softBytes)) break
      batch.push(item)
      bytes += item.bytes
    }
    return { batch, end: this.head + batch.length }
  }
  /** Forget every frame before absolute position `end` (some may have been dropped meanwhile). */
  ack(end: number) {
    const n = Math.min(this.items.length, Math.max(0, end - this.head))
    this.items.splice(0, n)
    this.head += n
  }
}

// ---------------------------------------------------------------- the network

type Outgoing = { readonly to: FrameTarget; readonly message: WireMessage }

export const makeWsConsensusNetwork = (
  options: WsConsensusNetworkOptions
): Effect.Effect<WsConsensusNetwork, WsNetworkError, Scope.Scope> =>
  Effect.gen(function* () {
    const { self, validators, key } = options
    const count = validators.length
    if (!Number.isSafeInteger(self) || self < 0 || self >= count) {
      return yield* new WsNetworkError({ detail: `self ${self} is not a seat of a ${count}-validator committee` })
    }
    if (key.publicKey.address !== validators[self]!.address) {
      return yield* new WsNetworkError({
        detail: `this key's address ${key.publicKey.address} is not validator ${self}'s (${validators[self]!.address})`
      })
    }
    const maxFrameBytes = options.maxFrameBytes ?? FRAME_BYTES_MAX_DEFAULT
    const verifier = options.verifier ?? inThreadFrameVerifier
    const chainId = options.chainId.toString()
    const reconnectMaxMs = options.reconnectMaxMs ?? RECONNECT_MAX_MS_DEFAULT
    const session = yield* Clock.currentTimeMillis
    const seatOf = new Map<string, number>(validators.map((v, i) => [v.address, i]))
    const peers = validators.map((_, i) => i).filter((i) => i !== self)
    const urls = new Map(options.peers.map((p) => [p.index, p.url]))

    // ------------------------------------------------------------ counters
    const dropped = Object.fromEntries(InboundDrop.map((d) => [d, 0])) as Record<InboundDrop, number>
    const drop = (reason: InboundDrop, n = 1) => {
      dropped[reason] += n
    }
    let framesReceived = 0
    let messagesReceived = 0
    const outbound = { framesSigned: 0, messagesQueued: 0, overflow: 0, unsendable: 0 }

    // ------------------------------------------------------------ inbound
    // Each peer has its own rate (a token bucket), its own verification queue and fiber, and its own share of
    // the messages waiting for the consumer; a pump hands the peers' messages over in turn, so one peer that
    // floods fills only its own queues, counted, while the others' frames go on.
    const clock = yield* Effect.clock
    const inboundCapacity = options.inboundQueue ?? INBOUND_QUEUE_DEFAULT
    const inbound = yield* Queue.bounded<Envelope>(Math.max(1, Math.min(1024, inboundCapacity)))
    const peerShare = Math.max(1, Math.floor(inboundCapacity / Math.max(1, count - 1)))
    const rate = options.peerFramesPerSecond ?? PEER_FRAMES_PER_SECOND_DEFAULT
    const burst = options.peerFramesBurst ?? PEER_FRAMES_BURST_DEFAULT
    type Pending = { readonly frame: SignedFrame; readonly publicKey: PublicKey; readonly signature: Uint8Array }
    interface PeerInbound {
      readonly verify: Queue.Queue<Pending>
      /** Verified messages waiting for the pump (at most `peerShare`). */
      messages: Array<Envelope>
      tokens: number
      refilledAt: number
      framesReceived: number
      droppedInbound: number
    }
    const inboundOf = new Map<number, PeerInbound>()
    for (let seat = 0; seat < count; seat++) {
      if (seat === self) continue
      inboundOf.set(seat, {
        verify: yield* Queue.dropping<Pending>(options.verifyQueue ?? VERIFY_QUEUE_DEFAULT),
        messages: [],
        tokens: burst,
        refilledAt: clock.unsafeCurrentTimeMillis(),
        framesReceived: 0,
        droppedInbound: 0
      })
    }
    const lastSeen = new Map<number, { session: number; seq: number }>()
    const ready = Effect.unsafeMakeLatch(false)

    /** Whether `peer` may send one more frame now (its bucket refills at `rate` a second, up to `burst`). */
    const takeToken = (peer: PeerInbound): boolean => {
      const now = clock.unsafeCurrentTimeMillis()
      peer.tokens = Math.min(burst, peer.tokens + ((now - peer.refilledAt) * rate) / 1000)
      peer.refilledAt = now
      if (peer.tokens < 1) return false
      peer.tokens -= 1
      return true
    }

    /** The cheap checks, synchronously in the handler (so frames queue in arrival order), for a connection proven to be `seat`'s. */
    const admit = (raw: unknown, seat: number) => {
      const peer = inboundOf.get(seat)!
      if (!takeToken(peer)) {
        peer.droppedInbound++
        return drop("rateLimited")
      }
      const decoded = decodeFrame(raw)
      if (Either.isLeft(decoded)) return drop("malformed")
      const frame = decoded.right
      if (frame.payload.length > maxFrameBytes) return drop("oversized")
      if (frame.chainId !== chainId) return drop("wrongChain")
      if (frame.from >= count || frame.from === self) return drop("unknownSender")
      if (frame.from !== seat) return drop("wrongConnection")
      if (frame.to !== BROADCAST && frame.to !== self) return drop("misrouted")
      const publicKey = PublicKey.fromBytes(Either.getOrThrow(hexToBytes(frame.publicKey)))
      if (Either.isLeft(publicKey)) return drop("unknownKey")
      const keySeat = seatOf.get(publicKey.right.address)
      if (keySeat === undefined) return drop("unknownKey")
      if (keySeat !== frame.from) return drop("spoofedSender")
      const ok = peer.verify.unsafeOffer({ frame, publicKey: publicKey.right, signature: Either.getOrThrow(hexToBytes(frame.signature)) })
      if (!ok) {
        peer.droppedInbound++
        return drop("overloaded")
      }
      peer.framesReceived++
    }

    const ingest = (payload: unknown, seat: number) =>
      Effect.sync(() => {
        if (!Array.isArray(payload) || payload.length > FRAMES_PER_CALL_MAX) return drop("malformed")
        for (const raw of payload) admit(raw, seat)
      })

    /** After the signature: freshness, then the payload's messages, in order, into the sender's share. */
    const deliver = (p: Pending, valid: boolean): void => {
      if (!valid) return drop("badSignature")
      const { frame } = p
      const last = lastSeen.get(frame.from)
      if (last !== undefined && (frame.session < last.session || (frame.session === last.session && frame.seq <= last.seq))) {
        return drop("replayed")
      }
      lastSeen.set(frame.from, { session: frame.session, seq: frame.seq })
      let items: unknown
      try {
        items = JSON.parse(frame.payload)
      } catch {
        return drop("malformed")
      }
      if (!Array.isArray(items) || items.length > MESSAGES_PER_FRAME_MAX) return drop("malformed")
      const messages: Array<WireMessage> = []
      for (const item of items) {
        const m = decodeMessage(item)
        if (Either.isLeft(m)) return drop("malformed")
        messages.push(m.right)
      }
      framesReceived++
      const peer = inboundOf.get(frame.from)!
      for (const message of messages) {
        if (peer.messages.length >= peerShare) {
          peer.droppedInbound++
          drop("inboundFull")
          continue
        }
        peer.messages.push({ from: frame.from, message })
        messagesReceived++
      }
      ready.unsafeOpen()
    }

    for (const peer of inboundOf.values()) {
      yield* Effect.forkScoped(
        Queue.takeBetween(peer.verify, 1, 64).pipe(
          Effect.flatMap((chunk) => {
            const pending = [...chunk]
            return Effect.forEach(
              pending,
              (p) =>
                verifier
                  .verifyDigest({ digest: frameDigest(p.frame), publicKey: p.publicKey, signature: p.signature })
                  .pipe(Effect.catchAllCause(() => Effect.succeed(false))),
              { concurrency: "unbounded" }
            ).pipe(Effect.flatMap((valid) => Effect.sync(() => pending.forEach((p, i) => deliver(p, valid[i]!)))))
          }),
          Effect.forever
        )
      )
    }

    // The pump: up to 64 messages of each peer in turn into the consumer's queue (waiting while it is full).
    const sources = [...inboundOf.values()]
    let turn = 0
    yield* Effect.forkScoped(
      Effect.gen(function* () {
        for (;;) {
          let moved = false
          for (let k = 0; k < sources.length; k++) {
            const peer = sources[(turn + k) % sources.length]!
            if (peer.messages.length === 0) continue
            yield* Queue.offerAll(inbound, peer.messages.splice(0, 64))
            moved = true
          }
          turn++
          if (moved) continue
          ready.unsafeClose()
          if (sources.every((p) => p.messages.length === 0)) yield* ready.await
        }
      })
    )

    // ------------------------------------------------------------ connections: the peer proves its key
    const challenges = new Map<number, string>()
    const seatOfClient = new Map<number, number>()
    const clientsOfSeat = new Map<number, Array<number>>()
    /** Connections a seat may hold at once (a reconnect opens a new one before the old one is known closed). */
    const CONNECTIONS_PER_SEAT = 4

    const hello = (clientId: number) =>
      Effect.sync(() => {
        const nonce = bytesToHex(randomBytes(AUTH_NONCE_BYTES))
        challenges.delete(clientId)
        challenges.set(clientId, nonce)
        while (challenges.size > CHALLENGES_MAX) challenges.delete(challenges.keys().next().value!)
        return { chainId, server: self, nonce }
      })

    const authenticate = (payload: unknown, clientId: number): Effect.Effect<{ readonly seat: number }, AuthRefused> =>
      Effect.gen(function* () {
        const refuse = (reason: AuthRefused["reason"], detail: string) =>
          Effect.zipRight(
            Effect.sync(() => drop("authFailed")),
            Effect.fail(new AuthRefused({ reason, detail }))
          )
        const nonce = challenges.get(clientId)
        if (nonce === undefined) return yield* refuse("NoChallenge", "ask for a challenge (consensus.hello) on this connection first")
        challenges.delete(clientId) // one answer per challenge
        const answer = decodeAuth(payload)
        if (Either.isLeft(answer)) return yield* refuse("Malformed", "not an answer to a challenge")
        const { from } = answer.right
        if (from >= count || from === self) return yield* refuse("UnknownSeat", `seat ${from} is not another member of this ${count}-seat committee`)
        const publicKey = PublicKey.fromBytes(Either.getOrThrow(hexToBytes(answer.right.publicKey)))
        if (Either.isLeft(publicKey) || publicKey.right.address !== validators[from]!.address) {
          return yield* refuse("WrongKey", `the key is not seat ${from}'s`)
        }
        const digest = authDigest({ chainId, server: self, from, nonce })
        const signature = Either.getOrThrow(hexToBytes(answer.right.signature))
        const valid = yield* verifier
          .verifyDigest({ digest, publicKey: publicKey.right, signature })
          .pipe(Effect.catchAllCause(() => Effect.succeed(false)))
        if (!valid) return yield* refuse("BadSignature", `the signature does not prove seat ${from}'s key over this connection's challenge`)
        const held = clientsOfSeat.get(from) ?? []
        held.push(clientId)
        while (held.length > CONNECTIONS_PER_SEAT) seatOfClient.delete(held.shift()!)
        clientsOfSeat.set(from, held)
        seatOfClient.set(clientId, from)
        return { seat: from }
      })

    const frames = (payload: unknown, clientId: number) => {
      const seat = seatOfClient.get(clientId)
      if (seat === undefined) {
        return Effect.sync(() => {
          drop("unauthenticated", Array.isArray(payload) ? Math.max(1, payload.length) : 1)
          return { authenticated: false }
        })
      }
      return Effect.as(ingest(payload, seat), { authenticated: true })
    }

    // ------------------------------------------------------------ outbound
    const outQueue = yield* Queue.dropping<Outgoing>(options.outboundQueue ?? OUTBOUND_QUEUE_DEFAULT)
    const rings = new Map<number, FrameRing>(peers.map((p) => [p, new FrameRing(options.peerQueueFrames ?? PEER_QUEUE_FRAMES_DEFAULT)]))
    let seq = 0

    const offerOut = (item: Outgoing) =>
      Effect.sync(() => {
        if (outQueue.unsafeOffer(item)) outbound.messagesQueued++
        else outbound.overflow++
      })

    const emit = (to: FrameTarget, jsons: ReadonlyArray<string>) => {
      const frame = signFrame(key, { chainId: options.chainId, from: self, to, session, seq: ++seq, payload: framePayload(jsons) })
      outbound.framesSigned++
      const item: QueuedFrame = { frame, messages: jsons.length, bytes: frame.payload.length }
      if (to === BROADCAST) for (const ring of rings.values()) ring.push(item)
      else rings.get(to)?.push(item)
    }

    /** `jsons` as frames to `to`, in order, each at most `maxFrameBytes`, each signed once. */
    const emitAll = (to: FrameTarget, jsons: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        let frame: Array<string> = []
        let bytes = 2
        for (const json of jsons) {
          if (frame.length > 0 && (bytes + json.length + 1 > maxFrameBytes || frame.length >= MESSAGES_PER_FRAME_MAX)) {
            emit(to, frame)
            frame = []
            bytes = 2
            yield* Effect.yieldNow()
          }
          frame.push(json)
          bytes += json.length + 1
        }
        if (frame.length > 0) emit(to, frame)
        yield* Effect.yieldNow()
      })

    /**
     * What waited, as frames: all broadcasts, one broadcast frame; a mix,
     * one frame per peer with its unicasts and the broadcasts in their order
     * (a signature per peer, not per change of destination).
     */
    const signBatch = (batch: ReadonlyArray<Outgoing>) =>
      Effect.gen(function* () {
        const encoded: Array<{ readonly to: FrameTarget; readonly json: string }> = []
        for (const item of batch) {
          let json: string
          try {
            json = encodeWire(item.message)
          } catch {
            outbound.unsendable++
            continue
          }
          if (json.length + 2 > maxFrameBytes) outbound.unsendable++
          else encoded.push({ to: item.to, json })
        }
        if (encoded.every((e) => e.to === BROADCAST)) return yield* emitAll(BROADCAST, encoded.map((e) => e.json))
        for (const peer of peers) {
          const jsons = encoded.filter((e) => e.to === BROADCAST || e.to === peer).map((e) => e.json)
          if (jsons.length > 0) yield* emitAll(peer, jsons)
        }
      })

    yield* Effect.forkScoped(
      Queue.takeBetween(outQueue, 1, 512).pipe(
        Effect.flatMap((chunk) => signBatch([...chunk])),
        Effect.forever
      )
    )

    // ------------------------------------------------------------ serving
    const serverDrop = (reason: InboundDrop) => drop(reason)
    const serialization = guardedJson(maxFrameBytes + 64 * 1024, serverDrop)
    const handlers = ConsensusRpcs.toLayer({
      "consensus.hello": (_, { clientId }) => hello(clientId),
      "consensus.auth": (payload, { clientId }) => authenticate(payload, clientId),
      "consensus.frames": (payload, { clientId }) => frames(payload, clientId),
      "network.stats": () => stats
    })
    const server = HttpLayerRouter.serve(
      RpcServer.layerHttpRouter({ group: ConsensusRpcs, path: CONSENSUS_PATH, protocol: "websocket" }).pipe(
        Layer.provide(handlers),
        Layer.provide(serialization)
      ),
      { disableLogger: true }
    ).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.listen.port, host: options.listen.host })))
    const context = yield* Layer.build(server).pipe(
      Effect.mapError(
        (e) => new WsNetworkError({ detail: `cannot serve consensus on ${options.listen.host}:${options.listen.port}: ${String(e.cause ?? e)}` })
      )
    )
    const bound = Context.get(context, HttpServer.HttpServer).address
    const address = bound._tag === "TcpAddress" ? { host: options.listen.host, port: bound.port } : { ...options.listen }

    // ------------------------------------------------------------ dialling
    const connected = new Map<number, boolean>()
    const peerCounters = new Map<number, { framesSent: number; messagesSent: number; sendFailures: number }>()
    const clientSerialization = RpcSerialization.layerJson
    for (const peer of peers) {
      const ring = rings.get(peer)!
      const counters = { framesSent: 0, messagesSent: 0, sendFailures: 0 }
      peerCounters.set(peer, counters)
      connected.set(peer, false)
      const url = urls.get(peer)
      if (url === undefined) continue // nowhere to send: the ring fills and drops, counted
      const protocol = RpcClient.layerProtocolSocket({
        retryTransientErrors: false,
        retrySchedule: Schedule.exponential(Duration.millis(RECONNECT_MIN_MS), 2).pipe(
          Schedule.union(Schedule.spaced(Duration.millis(reconnectMaxMs)))
        )
      }).pipe(Layer.provide([NodeSocket.layerWebSocket(url), clientSerialization]))
      const client = yield* RpcClient.make(ConsensusRpcs).pipe(Effect.provide(yield* Layer.build(protocol)))
      let backoff = RECONNECT_MIN_MS
      /** Whether this connection proved this node's key to the peer (after any failure, prove it again). */
      let authenticated = false
      const authenticate = client.consensus.hello().pipe(
        Effect.flatMap((challenge) =>
          client.consensus.auth(signAuth(key, { chainId: options.chainId, server: peer, from: self, nonce: challenge.nonce }))
        ),
        Effect.tap(() => Effect.sync(() => (authenticated = true)))
      )
      const sendOnce = Effect.suspend(() => {
        const { batch, end } = ring.peek(FRAMES_PER_CALL_MAX, CALL_BYTES_SOFT_MAX)
        if (batch.length === 0) return Effect.void
        return Effect.suspend(() => (authenticated ? Effect.void : authenticate)).pipe(
          Effect.zipRight(client.consensus.frames(batch.map((q) => q.frame))),
          Effect.timeout(Duration.millis(CALL_TIMEOUT_MS)),
          Effect.matchCauseEffect({
            onSuccess: ({ authenticated: taken }) =>
              Effect.sync(() => {
                if (!taken) {
                  // A new connection (the socket reconnected): prove the key on it, then send again.
                  authenticated = false
                  return
                }
                ring.ack(end)
                counters.framesSent += batch.length
                counters.messagesSent += batch.reduce((n, q) => n + q.messages, 0)
                connected.set(peer, true)
                backoff = RECONNECT_MIN_MS
              }),
            onFailure: () =>
              Effect.suspend(() => {
                authenticated = false
                counters.sendFailures++
                connected.set(peer, false)
                const wait = backoff
                backoff = Math.min(backoff * 2, reconnectMaxMs)
                return Effect.sleep(Duration.millis(wait))
              })
          })
        )
      })
      yield* Effect.forkScoped(Effect.forever(Effect.zipRight(ring.awaitItems, sendOnce)))
    }

    // ------------------------------------------------------------ stats
    const stats: Effect.Effect<NetworkStats> = Effect.sync(() => ({
      self,
      session,
      framesReceived,
      messagesReceived,
      dropped: { ...dropped },
      outbound: { ...outbound },
      peers: peers.map((peer) => {
        const ring = rings.get(peer)!
        const c = peerCounters.get(peer)!
        return {
          peer,
          url: urls.get(peer) ?? "",
          connected: connected.get(peer) ?? false,
          framesSent: c.framesSent,
          messagesSent: c.messagesSent,
          queued: ring.size,
          droppedFrames: ring.droppedFrames,
          droppedMessages: ring.droppedMessages,
          sendFailures: c.sendFailures,
          framesReceived: inboundOf.get(peer)!.framesReceived,
          droppedInbound: inboundOf.get(peer)!.droppedInbound
        }
      })
    }))

    const logIntervalMs = options.logIntervalMs ?? 10_000
    if (logIntervalMs > 0) {
      let lastDrops = JSON.stringify([0, 0, 0, 0])
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          const s = yield* stats
          const drops = JSON.stringify([
            Object.values(s.dropped).reduce((a, b) => a + b, 0),
            s.outbound.overflow,
            s.outbound.unsendable,
            s.peers.reduce((n, p) => n + p.droppedFrames, 0)
          ])
          if (drops === lastDrops) return
          lastDrops = drops
          const nonzero = Object.entries(s.dropped).filter(([, n]) => n > 0)
          yield* Effect.logWarning(
            `consensus network: received ${s.framesReceived} frames; dropped inbound ${nonzero.map(([k, n]) => `${k}=${n}`).join(" ") || "none"}; ` +
              `outbound overflow=${s.outbound.overflow} unsendable=${s.outbound.unsendable}; ` +
              s.peers.map((p) => `peer ${p.peer} ${p.connected ? "up" : "down"} queued=${p.queued} dropped=${p.droppedFrames}`).join(", ")
          )
        }).pipe(Effect.delay(Duration.millis(logIntervalMs)), Effect.forever)
      )
    }

    const network: WsConsensusNetwork = {
      self,
      peers,
      send: (to, message) => offerOut({ to, message }),
      broadcast: (message) => offerOut({ to: BROADCAST, message }),
      inbound,
      address,
      url: `ws://${address.host}:${address.port}${CONSENSUS_PATH}`,
      stats
    }
    return network
  })
