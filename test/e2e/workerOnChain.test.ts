/**
 * Workers on chain, on a real `topai node start` process: its in-process
 * compute node registers on the AI shard by its own `worker.register` (fee
 * 0) and only once — a node restart finds it there and submits nothing; the
 * ledger's units are what the node schedules with; a connection-level
 * registration of a key not on chain is NotOnChain, one whose class
 * disagrees with the chain's is ClassMismatch; the devices the node counts
 * are the ledger's units', not the connection's word.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { devKey, PrivateKey } from "../../domain/chain/keys.js"
import { hexToBytes } from "../../domain/chain/hex.js"
import { QUIET_BEACON, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { cleanup, makeTempDir, spawnNode, type NodeProcess } from "./support/processes.js"
import { freshNonce, registerWorkerOnChain, signRegistration } from "./support/ai.js"
import { signMessage, workerRegistrationDigest } from "../../domain/ai/signedMessages.js"

let node: NodeProcess
let c: TestClient
let aiShard: number
let chainId: bigint
const dataDir = makeTempDir("worker-on-chain")

const workerAddress = (): string => {
  const text = readFileSync(join(dataDir, "worker-0", "worker.key"), "utf8").trim()
  return Either.getOrThrow(PrivateKey.fromBytes(Either.getOrThrow(hexToBytes(text, 32)))).publicKey.address
}

const onChain = async (address: string) => {
  const r = await Effect.runPromise(Effect.either(c.client.worker.onChain({ address })))
  return Either.isRight(r) ? r.right : undefined
}

const aiNonce = async (address: string) => (await c.run(c.client.account.get({ address, shard: aiShard }))).nonce

const start = async () => {
  node = await spawnNode({ dataDir, extraArgs: [...QUIET_BEACON, "--workers", "1"] })
  c = await openClient(node.url)
  const status = await c.run(c.client.node.status())
  aiShard = status.shards.find((s) => s.kind === "ai")!.shard
  chainId = status.chainId
}

beforeAll(start, 120_000)

afterAll(async () => {
  await c?.close()
  await node?.stop("SIGINT")
  await cleanup()
})

describe("workers on chain (topai node start)", () => {
  it("the in-process compute node registers on the AI shard once: its own worker.register (CPU × 1, units 100 milli); a node restart registers nothing again", async () => {
    const address = workerAddress()
    const w = await waitFor(`worker ${address} on chain`, () => onChain(address), { timeoutMs: 60_000 })
    expect(w).toMatchObject({ worker: address, owner: address, gpuClass: "CPU", gpuUnitsMilli: 100n, endpoint: "in-process" })
    expect(await aiNonce(address)).toBe(1n)
    // The node schedules it: online in its list, with the ledger's class.
    await waitFor("the worker online", async () => ((await c.run(c.client.worker.list())).find((x) => x.id === address && x.online) ? true : undefined), { timeoutMs: 60_000 })

    await c.close()
    expect((await node.stop("SIGINT")).code).toBe(0)
    await start()
    expect(workerAddress()).toBe(address)
    await waitFor("the worker online after the restart", async () => ((await c.run(c.client.worker.list())).find((x) => x.id === address && x.online) ? true : undefined), {
      timeoutMs: 60_000
    })
    expect(await aiNonce(address)).toBe(1n) // no second worker.register
    expect((await onChain(address))?.registeredHeight).toBe(w.registeredHeight)
  }, 240_000)

  it("a connection-level registration of a key not on chain is NotOnChain; of a class other than the chain's, ClassMismatch", async () => {
    const key = devKey(71)
    const notOnChain = (await c.fail(c.client.worker.register(signRegistration(chainId, key)))) as { _tag: string; reason: string; message: string }
    expect({ tag: notOnChain._tag, reason: notOnChain.reason }).toEqual({ tag: "WorkerRejected", reason: "NotOnChain" })
    await registerWorkerOnChain(c, key, { gpuClass: "CPU" })
    const mismatch = (await c.fail(c.client.worker.register(signRegistration(chainId, key, { gpuClass: "H100" })))) as { _tag: string; reason: string; message: string }
    expect({ tag: mismatch._tag, reason: mismatch.reason }).toEqual({ tag: "WorkerRejected", reason: "ClassMismatch" })
    expect(mismatch.message).toMatch(/declares H100 here, but its registration on chain says CPU/)
    expect((await c.run(c.client.worker.register(signRegistration(chainId, key, { gpuClass: "CPU" })))).worker).toBe(key.publicKey.address)
  }, 120_000)

  it("the node counts a worker's devices as the ledger's units say, not as its connection declares", async () => {
    const key = devKey(72)
    await registerWorkerOnChain(c, key, { gpuClass: "CPU", devices: 1 })
    // Signed for 4 devices at the connection; the chain registered 1 (units 100 milli = 1 × CPU's 0.1).
    const offer = { gpuClass: "CPU", devices: 4, stake: 0n, endpoint: "http://worker.example", at: Date.now(), nonce: freshNonce() }
    const request = { publicKey: key.publicKey.hex, ...offer, signature: signMessage(workerRegistrationDigest({ chainId, ...offer }), key) }
    expect((await c.run(c.client.worker.register(request))).worker).toBe(key.publicKey.address)
    expect((await onChain(key.publicKey.address))?.gpuUnitsMilli).toBe(100n)
    const listed = (await c.run(c.client.worker.list())).find((w) => w.id === key.publicKey.address)
    expect(listed).toMatchObject({ gpuClass: "CPU", devices: 1 })
  }, 120_000)
})
