/**
 * The WebSocket consensus network on real localhost sockets: transports of
 * one committee exchange frames in order; a peer that restarts is reached
 * again; bad signatures, unknown keys, spoofed senders, replays, oversized,
 * malformed and garbage frames sent by a raw client are dropped and counted
 * while good traffic goes on; a peer that is down makes its bounded queue
 * drop the oldest frames, counted, and gets the newest when it comes back.
 */
import { NodeSocket } from "@effect/platform-node"
import { RpcClient, RpcSerialization } from "@effect/rpc"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Queue, Schema } from "effect"
import WebSocket from "ws"
import { devKeyFromSeed } from "../../domain/chain/keys.js"
import { devValidatorKeys } from "../../domain/chain/validators.js"
import { encodeWire, WireMessage } from "../../infra/network/wire.js"
import type { PrivateKey } from "../../domain/chain/keys.js"
import { BROADCAST, ConsensusRpcs, framePayload, signAuth, signFrame } from "../../infra/network/WsConsensusNetwork.js"
import { eventually, makeCluster, NET_CHAIN_ID, numbered, numberOf } from "./support.js"

const rawClient = (url: string) =>
  Effect.gen(function* () {
    const protocol = RpcClient.layerProtocolSocket().pipe(Layer.provide([NodeSocket.layerWebSocket(url), RpcSerialization.layerJson]))
    return yield* RpcClient.make(ConsensusRpcs).pipe(Effect.provide(yield* Layer.build(protocol)))
  })

/** A raw client that proved `seat`'s key to the node at `url` (seat `server`). */
const authedClient = (url: string, server: number, seat: number, key: PrivateKey) =>
  Effect.gen(function* () {
    const raw = yield* rawClient(url)
    const challenge = yield* raw.consensus.hello().pipe(Effect.orDie)
    yield* raw.consensus.auth(signAuth(key, { chainId: NET_CHAIN_ID, server, from: seat, nonce: challenge.nonce })).pipe(Effect.orDie)
    return raw
  })

describe("WsConsensusNetwork", () => {
  it.scopedLive(
    "four transports exchange unicast and broadcast frames, each sender's in order",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(4)
        yield* Effect.forEach([0, 1, 2, 3], c.start, { discard: true })
        const PER = 150
        // Each validator i sends, interleaved: a unicast to each peer and a broadcast, numbered i*1e6 + k.
        yield* Effect.forEach(
          [0, 1, 2, 3],
          (i) =>
            Effect.forEach(
              Array.from({ length: PER }, (_, k) => k),
              (k) =>
                Effect.gen(function* () {
                  const n = i * 1_000_000 + 2 * k
                  for (const p of c.net(i).peers) yield* c.net(i).send(p, numbered(n))
                  yield* c.net(i).broadcast(numbered(n + 1))
                  if (k % 10 === 0) yield* Effect.sleep("1 millis") // several frames, not one
                }),
              { discard: true }
            ),
          { discard: true, concurrency: "unbounded" }
        )
        for (const r of [0, 1, 2, 3]) {
          const got = yield* c.take(r, 3 * 2 * PER)
          for (const s of [0, 1, 2, 3].filter((s) => s !== r)) {
            const from = got.filter((e) => e.from === s).map(numberOf)
            expect(from).toEqual(Array.from({ length: 2 * PER }, (_, k) => s * 1_000_000 + k))
          }
          const stats = yield* c.net(r).stats
          expect(Object.values(stats.dropped).every((n) => n === 0)).toBe(true)
          expect(stats.framesReceived).toBeGreaterThan(3)
        }
        for (const r of [0, 1, 2, 3]) {
          // Acknowledgements may still be on their way back.
          yield* eventually(
            `validator ${r}'s queues drained`,
            Effect.map(c.net(r).stats, (s) => (s.peers.every((p) => p.connected && p.queued === 0) ? s : undefined))
          )
          expect((yield* c.net(r).stats).peers.every((p) => p.droppedFrames === 0)).toBe(true)
        }
      }),
    60_000
  )

  it.scopedLive(
    "throughput: 20,000 small messages from one validator to another",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(2)
        yield* Effect.forEach([0, 1], c.start, { discard: true })
        const N = 20_000
        yield* c.net(0).send(1, numbered(-0 + 0))
        yield* c.take(1, 1)
        const started = performance.now()
        const receiving = Effect.fork(c.take(1, N, 30_000))
        const fiber = yield* receiving
        for (let k = 1; k <= N; k++) {
          yield* c.net(0).send(1, numbered(k))
          if (k % 200 === 0) yield* Effect.sleep("1 millis")
        }
        const got = yield* fiber.await.pipe(Effect.flatMap((exit) => exit))
        const seconds = (performance.now() - started) / 1000
        expect(got.map(numberOf)).toEqual(Array.from({ length: N }, (_, k) => k + 1))
        const s = yield* c.net(0).stats
        const frames = s.peers[0]!.framesSent - 1
        // One message per frame, each waited for: a frame's one-way trip (sign, send, verify, deliver).
        const trips: Array<number> = []
        for (let k = 0; k < 100; k++) {
          const sent = performance.now()
          yield* c.net(0).send(1, numbered(N + 1 + k))
          yield* c.take(1, 1)
          trips.push(performance.now() - sent)
        }
        trips.sort((x, y) => x - y)
        console.log(
          `ws consensus network: ${N} messages in ${seconds.toFixed(2)} s = ${Math.round(N / seconds)} messages/s in ` +
            `${frames} signed frames (${Math.round(frames / seconds)} frames/s); one frame at a time: ` +
            `${Math.round(1000 / (trips.reduce((a, b) => a + b, 0) / trips.length))} frames/s, p50 ${trips[49]!.toFixed(2)} ms, p99 ${trips[98]!.toFixed(2)} ms`
        )
      }),
    60_000
  )

  it.scopedLive(
    "a peer that restarts is reached again: frames queued while it was down arrive, then new ones",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(3)
        yield* Effect.forEach([0, 1, 2], c.start, { discard: true })
        yield* c.net(0).send(1, numbered(1))
        expect((yield* c.take(1, 1)).map(numberOf)).toEqual([1])
        yield* c.stop(1)
        for (let k = 2; k <= 5; k++) {
          yield* c.net(0).send(1, numbered(k))
          yield* c.net(0).broadcast(numbered(100 + k))
          yield* Effect.sleep("30 millis")
        }
        // Validator 2 got the broadcasts meanwhile.
        expect((yield* c.take(2, 4)).map(numberOf)).toEqual([102, 103, 104, 105])
        yield* eventually(
          "validator 0 sees 1 down",
          Effect.map(c.net(0).stats, (s) => (s.peers.find((p) => p.peer === 1)!.connected ? undefined : true))
        )
        // It has tried validator 1 while it was down (and failed), before the restart.
        yield* eventually(
          "a send to the down validator 1 failed",
          Effect.map(c.net(0).stats, (s) => (s.peers.find((p) => p.peer === 1)!.sendFailures > 0 ? true : undefined))
        )
        yield* c.start(1)
        const got = yield* c.take(1, 8)
        expect(got.map(numberOf)).toEqual([2, 102, 3, 103, 4, 104, 5, 105])
        yield* c.net(0).send(1, numbered(6))
        yield* c.net(2).send(1, numbered(7))
        expect((yield* c.take(1, 2)).map(numberOf).sort()).toEqual([6, 7])
        const s0 = yield* c.net(0).stats
        const p1 = s0.peers.find((p) => p.peer === 1)!
        expect(p1.connected).toBe(true)
        expect(p1.sendFailures).toBeGreaterThan(0)
        expect(p1.droppedFrames).toBe(0)
        // The restarted node has a new session: its frames are not taken for replays.
        yield* c.net(1).broadcast(numbered(8))
        expect((yield* c.take(0, 1)).map(numberOf)).toEqual([8])
        expect((yield* c.net(0).stats).dropped.replayed).toBe(0)
      }),
    60_000
  )

  it.scopedLive(
    "bad signatures, unknown keys, spoofed senders, replays, wrong chain, oversized, malformed and garbage frames are dropped and counted; good traffic goes on",
    () =>
      Effect.gen(function* () {
        const MAX = 64 * 1024
        const c = yield* makeCluster(4, () => ({ maxFrameBytes: MAX }))
        yield* Effect.forEach([0, 1], c.start, { discard: true }) // 2 and 3 are played by the test
        const raw = yield* authedClient(c.url(1), 1, 2, devValidatorKeys(2).secp)
        const key2 = devValidatorKeys(2).secp
        const payload = framePayload([encodeWire(numbered(42))])
        const frame = (over: Partial<Parameters<typeof signFrame>[1]> = {}, key = key2) =>
          signFrame(key, { chainId: NET_CHAIN_ID, from: 2, to: 1, session: 1_000, seq: 10, payload, ...over })
        const send = (frames: unknown) => raw.consensus.frames(frames).pipe(Effect.timeout("5 seconds"), Effect.orDie)

        // A good frame from seat 2 (played by the test) is delivered.
        yield* send([frame()])
        expect((yield* c.take(1, 1)).map((e) => [e.from, e.message._tag])).toEqual([[2, "TxRequest"]])

        const good = frame({ seq: 40 }) // sent last: the signed frames below move the sequence on
        const tampered = { ...good, payload: framePayload([encodeWire(numbered(43))]) }
        yield* send([
          tampered, // bad signature
          frame({ seq: 12 }, devKeyFromSeed("stranger")), // a key no validator has
          frame({ seq: 13 }, devValidatorKeys(3).secp), // seat 3's key claiming seat 2
          frame({ seq: 13, from: 3 }, devValidatorKeys(3).secp), // seat 3's own frame, on seat 2's connection
          frame({ seq: 10 }), // replay of the delivered frame
          frame({ seq: 9 }), // an older sequence number
          frame({ session: 999, seq: 50 }), // an older session
          frame({ seq: 14, chainId: 1n }), // another chain
          frame({ seq: 15, to: 0 }), // addressed to another validator
          frame({ seq: 16, from: 1 }, devValidatorKeys(1).secp), // claims to be the receiver itself
          frame({ seq: 17, from: 9 }), // no such seat
          frame({ seq: 18, payload: "x".repeat(MAX + 1) }), // oversized payload
          frame({ seq: 19, payload: "{not json" }), // signed, but not JSON
          frame({ seq: 20, payload: JSON.stringify([{ _tag: "Nope" }]) }), // signed, but no WireMessage
          { ...good, signature: "0x1234" }, // malformed fields
          { hello: "world" },
          42
        ])
        yield* send("not an array")
        // Garbage on a raw WebSocket: not JSON, JSON that is no request of the group, a huge message.
        yield* Effect.async<void>((resume) => {
          const ws = new WebSocket(c.url(1))
          ws.on("open", () => {
            ws.send("garbage{")
            ws.send(JSON.stringify({ _tag: "Request", id: "1", tag: "admin.shutdown", payload: {}, headers: [] }))
            ws.send(JSON.stringify({ _tag: "Whatever" }))
            ws.send("y".repeat(MAX + 128 * 1024))
            setTimeout(() => {
              ws.close()
              resume(Effect.void)
            }, 200)
          })
          ws.on("error", () => resume(Effect.void))
        })

        // Good traffic still flows, both from the raw peer and from validator 0.
        yield* send([good])
        yield* c.net(0).send(1, numbered(7))
        const after = yield* c.take(1, 2)
        expect(after.map((e) => `${e.from}:${numberOf(e)}`).sort()).toEqual(["0:7", "2:42"])

        const s = yield* c.net(1).stats
        expect(s.dropped).toEqual({
          unauthenticated: 0,
          authFailed: 0,
          wrongConnection: 1,
          rateLimited: 0,
          garbage: 3,
          malformed: 6,
          oversized: 2,
          wrongChain: 1,
          unknownSender: 2,
          misrouted: 1,
          unknownKey: 1,
          spoofedSender: 1,
          badSignature: 1,
          replayed: 3,
          overloaded: 0,
          inboundFull: 0
        })
        // And the node still answers.
        expect((yield* raw.network.stats().pipe(Effect.orDie)).self).toBe(1)
        yield* send([frame({ seq: 41, to: BROADCAST })])
        expect((yield* c.take(1, 1)).map(numberOf)).toEqual([42])
      }),
    60_000
  )

  it.scopedLive(
    "a message larger than a frame may be is not sent, and counted; a full verification queue drops, and counts",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(2, (i) =>
          i === 0
            ? { maxFrameBytes: 4 * 1024 }
            : { verifyQueue: 1, verifier: { verifyDigest: () => Effect.sleep("50 millis").pipe(Effect.as(true)) } }
        )
        yield* Effect.forEach([0, 1], c.start, { discard: true })
        const big = Schema.decodeUnknownSync(WireMessage)({ _tag: "Txs", shard: 1, raw: [`0x${"ab".repeat(4 * 1024)}`] })
        yield* c.net(0).send(1, big)
        yield* c.net(0).send(1, numbered(1))
        expect((yield* c.take(1, 1)).map(numberOf)).toEqual([1])
        expect((yield* c.net(0).stats).outbound.unsendable).toBe(1)
        // A burst of frames at a receiver whose verifier is slow and whose queue holds one.
        const key0 = devValidatorKeys(0).secp
        const raw = yield* authedClient(c.url(1), 1, 0, key0)
        const frames = Array.from({ length: 20 }, (_, k) =>
          signFrame(key0, { chainId: NET_CHAIN_ID, from: 0, to: 1, session: 1, seq: k + 1, payload: framePayload([encodeWire(numbered(100 + k))]) })
        )
        yield* raw.consensus.frames(frames).pipe(Effect.timeout("5 seconds"), Effect.orDie)
        const s = yield* eventually(
          "the burst counted",
          Effect.map(c.net(1).stats, (s) => (s.dropped.overloaded > 0 ? s : undefined))
        )
        expect(s.dropped.overloaded).toBeGreaterThan(10)
      }),
    60_000
  )

  it.scopedLive(
    "a peer that is down: its queue keeps the newest frames, counts the dropped ones and never blocks the sender",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(2, () => ({ peerQueueFrames: 8 }))
        yield* c.start(0)
        for (let k = 1; k <= 50; k++) {
          yield* c.net(0)
            .send(1, numbered(k))
            .pipe(Effect.timeoutFail({ duration: 5_000, onTimeout: () => new Error(`send ${k} blocked on a peer that is down`) }), Effect.orDie)
          // One frame each: the next message waits until this one is signed into its own frame.
          yield* eventually(
            `frame ${k} signed`,
            Effect.map(c.net(0).stats, (s) => (s.outbound.framesSigned === k ? true : undefined))
          )
        }
        // The sender has tried the down peer (and failed) at least once.
        const s = yield* eventually(
          "a send to the down peer failed",
          Effect.map(c.net(0).stats, (s) => (s.peers[0]!.sendFailures > 0 ? s : undefined))
        )
        expect(s.outbound.framesSigned).toBe(50)
        const p = s.peers[0]!
        expect({ queued: p.queued, droppedFrames: p.droppedFrames, droppedMessages: p.droppedMessages, connected: p.connected }).toEqual({
          queued: 8,
          droppedFrames: 42,
          droppedMessages: 42,
          connected: false
        })
        yield* c.start(1)
        expect((yield* c.take(1, 8)).map(numberOf)).toEqual([43, 44, 45, 46, 47, 48, 49, 50])
        yield* eventually(
          "the queue drained",
          Effect.map(c.net(0).stats, (s) => (s.peers[0]!.queued === 0 && s.peers[0]!.connected ? true : undefined))
        )
      }),
    60_000
  )

  it.scopedLive(
    "a connection carries frames only once its peer proved its key on it: unauthenticated frames and bad proofs are refused, counted",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(4)
        yield* Effect.forEach([0, 1], c.start, { discard: true }) // 2 and 3 are played by the test
        const key2 = devValidatorKeys(2).secp
        let seq = 0
        const frame = () => signFrame(key2, { chainId: NET_CHAIN_ID, from: 2, to: 1, session: 5, seq: ++seq, payload: framePayload([encodeWire(numbered(seq))]) })
        const raw = yield* rawClient(c.url(1))
        // A validly signed frame on a connection that proved nothing: refused, not delivered.
        expect(yield* raw.consensus.frames([frame(), frame()]).pipe(Effect.orDie)).toEqual({ authenticated: false })
        const refusal = (answer: unknown) =>
          raw.consensus.auth(answer).pipe(
            Effect.flip,
            Effect.map((e) => e.reason),
            Effect.orDie
          )
        // An answer before any challenge; then, each to a fresh challenge: another seat's key, a signature over
        // another nonce, another server's, another seat's, a stranger seat, garbage.
        expect(yield* refusal(signAuth(key2, { chainId: NET_CHAIN_ID, server: 1, from: 2, nonce: "0x00" }))).toBe("NoChallenge")
        const challenged = (answer: (nonce: string) => unknown) =>
          Effect.flatMap(raw.consensus.hello().pipe(Effect.orDie), (ch) => refusal(answer(ch.nonce)))
        expect(yield* challenged((nonce) => signAuth(devValidatorKeys(3).secp, { chainId: NET_CHAIN_ID, server: 1, from: 2, nonce }))).toBe("WrongKey")
        expect(yield* challenged(() => signAuth(key2, { chainId: NET_CHAIN_ID, server: 1, from: 2, nonce: "0x1234" }))).toBe("BadSignature")
        expect(yield* challenged((nonce) => signAuth(key2, { chainId: NET_CHAIN_ID, server: 0, from: 2, nonce }))).toBe("BadSignature")
        expect(yield* challenged((nonce) => signAuth(key2, { chainId: 1n, server: 1, from: 2, nonce }))).toBe("BadSignature")
        expect(yield* challenged((nonce) => signAuth(key2, { chainId: NET_CHAIN_ID, server: 1, from: 9, nonce }))).toBe("UnknownSeat")
        expect(yield* challenged(() => ({ hello: "world" }))).toBe("Malformed")
        // A challenge answered on another connection (a relay) proves nothing there.
        const other = yield* rawClient(c.url(1))
        const ch = yield* raw.consensus.hello().pipe(Effect.orDie)
        const relayed = yield* other.consensus.auth(signAuth(key2, { chainId: NET_CHAIN_ID, server: 1, from: 2, nonce: ch.nonce })).pipe(Effect.flip, Effect.orDie)
        expect(relayed.reason).toBe("NoChallenge")
        // The same frames, once the connection proved seat 2's key: delivered.
        expect(yield* raw.consensus.auth(signAuth(key2, { chainId: NET_CHAIN_ID, server: 1, from: 2, nonce: ch.nonce })).pipe(Effect.orDie)).toEqual({ seat: 2 })
        expect(yield* raw.consensus.frames([frame()]).pipe(Effect.orDie)).toEqual({ authenticated: true })
        expect((yield* c.take(1, 1)).map((e) => [e.from, numberOf(e)])).toEqual([[2, 3]])
        const s = yield* c.net(1).stats
        expect({ unauthenticated: s.dropped.unauthenticated, authFailed: s.dropped.authFailed }).toEqual({ unauthenticated: 2, authFailed: 8 })
        // The other validator's own connection is unaffected.
        yield* c.net(0).send(1, numbered(77))
        expect((yield* c.take(1, 1)).map(numberOf)).toEqual([77])
      }),
    60_000
  )

  it.scopedLive(
    "a peer that floods is held to its rate and its own queues: another peer's frames all arrive",
    () =>
      Effect.gen(function* () {
        const c = yield* makeCluster(3, (i) => (i === 1 ? { peerFramesPerSecond: 1_000, peerFramesBurst: 200, inboundQueue: 512 } : {}))
        yield* Effect.forEach([0, 1], c.start, { discard: true }) // 2 is played by the test
        const key2 = devValidatorKeys(2).secp
        const flood = Array.from({ length: 1_024 }, (_, k) =>
          signFrame(key2, { chainId: NET_CHAIN_ID, from: 2, to: 1, session: 1, seq: k + 1, payload: framePayload([encodeWire(numbered(500_000 + k))]) })
        )
        const raw = yield* authedClient(c.url(1), 1, 2, key2)
        const flooding = yield* Effect.fork(
          Effect.forEach(
            Array.from({ length: flood.length / 256 }, (_, k) => flood.slice(k * 256, (k + 1) * 256)),
            (batch) => raw.consensus.frames(batch).pipe(Effect.orDie),
            { discard: true }
          )
        )
        const N = 100
        for (let k = 1; k <= N; k++) {
          yield* c.net(0).send(1, numbered(k))
          if (k % 10 === 0) yield* Effect.sleep("5 millis")
        }
        yield* flooding.await
        // Validator 0's messages all arrive, in order, among whatever of the flood got through.
        const fromZero: Array<number> = []
        yield* Effect.gen(function* () {
          while (fromZero.length < N) {
            for (const e of yield* Queue.takeBetween(c.net(1).inbound, 1, 1024)) if (e.from === 0) fromZero.push(numberOf(e))
          }
        }).pipe(Effect.timeoutFail({ duration: 20_000, onTimeout: () => new Error(`only ${fromZero.length} of validator 0's ${N} messages arrived`) }), Effect.orDie)
        expect(fromZero).toEqual(Array.from({ length: N }, (_, k) => k + 1))
        const s = yield* c.net(1).stats
        const [p0, p2] = [s.peers.find((p) => p.peer === 0)!, s.peers.find((p) => p.peer === 2)!]
        expect(s.dropped.rateLimited).toBeGreaterThan(0)
        expect(p2.droppedInbound).toBeGreaterThanOrEqual(s.dropped.rateLimited)
        expect(p2.framesReceived).toBeLessThan(flood.length)
        expect(p0.droppedInbound).toBe(0)
      }),
    60_000
  )
})
