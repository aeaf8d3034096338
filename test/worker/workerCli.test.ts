/**
 * `topai worker start|list` as real processes against the stand-in node
 * (served by this test process): the worker makes its key in the data dir
 * on first start and reuses it, registers, runs a task, stops on Ctrl-C with
 * exit 0; `worker list` prints a table or JSON; a bad option is one
 * readable line and exit 1. Each process costs ~2 s of CPU to start here.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Queue, Scope } from "effect"
import { execMsOf, resultDigest, verifyMessage } from "../../domain/ai/signedMessages.js"
import { tensorMapToJson } from "../../domain/ai/tensor.js"
import type { TaskAssignment } from "../../src/api/AiRpcs.js"
import { WORKER_KEY_FILE } from "../../src/cli/commands/worker.js"
import { sileroBytes } from "../ai/support/models.js"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"
import { parsePrivateKey } from "../../src/cli/parse.js"
import { makeFakeNodeState, startFakeNode, type FakeNode } from "./support/fakeNode.js"
import { requestedAssignment } from "./support/request.js"
import { freePort } from "../support/freePort.js"

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url))
const WORKER_CLI = join(REPO_ROOT, "test", "worker", "support", "workerCli.ts")
const WAIT_MS = 30_000

const children = new Set<ChildProcess>()
const dirs: Array<string> = []
let scope: Scope.CloseableScope
let node: FakeNode

interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const cli = (args: ReadonlyArray<string>): Proc => {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER_CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.add(child)
  let output = ""
  child.stdout!.on("data", (b: Buffer) => (output += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (output += b.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child)
      resolve({ code, signal })
    })
  )
  return { child, output: () => output, exited }
}

const within = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))])

const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + WAIT_MS
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}


const SILERO = sileroBytes()

beforeAll(async () => {
  const blobsDir = mkdtempSync(join(tmpdir(), "topai-worker-cli-node-"))
  dirs.push(blobsDir)
  const blobs = makeFsBlobStore(blobsDir)
  await Effect.runPromise(blobs.put(SILERO))
  scope = await Effect.runPromise(Scope.make())
  const port = await freePort()
  node = await Effect.runPromise(Effect.flatMap(makeFakeNodeState(blobs), (s) => startFakeNode(s, port)).pipe(Scope.extend(scope)))
})

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe("topai worker", () => {
  it("start: makes its key in the data dir, registers, runs a task, stops on Ctrl-C with exit 0; a restart reuses the key; list prints it", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "topai-worker-cli-data-"))
    dirs.push(dataDir)
    const args = ["worker", "start", "--gpu-class", "CPU", "--devices", "1", "--stake", "5", "--data-dir", dataDir, "--rpc", node.url, "--endpoint", "cli-test"]
    const first = cli(args)
    await until(() => node.state.registrations.length === 1, "the first registration")
    const keyFile = join(dataDir, WORKER_KEY_FILE)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    const key = await Effect.runPromise(parsePrivateKey(readFileSync(keyFile, "utf8")))
    expect(node.state.registrations[0]).toMatchObject({ address: key.publicKey.address, gpuClass: "CPU", devices: 1, stake: 5n, endpoint: "cli-test" })

    const task = requestedAssignment({
      model: "silero",
      weightsHash: `0x${createHash("sha256").update(SILERO).digest("hex")}`,
      sizeBytes: SILERO.length,
      outputTolerance: 1e-4,
      inputs: tensorMapToJson({
        input: { type: "float32", dims: [1, 576], data: new Float32Array(576).fill(0.1) },
        state: { type: "float32", dims: [2, 1, 128], data: new Float32Array(256) },
        sr: { type: "int64", dims: [], data: BigInt64Array.of(16000n) }
      }),
      deadlineMs: WAIT_MS
    })
    await Effect.runPromise(Queue.offer(node.state.tasks, task))
    const result = await Effect.runPromise(Queue.take(node.state.results).pipe(Effect.timeout(Duration.millis(WAIT_MS))))
    expect(Either.isRight(verifyMessage(resultDigest(task.task, result.fingerprint, execMsOf(result.millis)), key.publicKey.hex, result.signature))).toBe(true)

    first.child.kill("SIGINT")
    const exit = await within(first.exited, 15_000, "exit after SIGINT")
    expect(exit).toEqual({ code: 0, signal: null })
    expect(first.output()).toMatch(/made a new worker key in .*worker\.key \(address 0x[0-9a-f]{40}\)/)
    expect(first.output()).toMatch(/registered with ws:\/\/127\.0\.0\.1:\d+\/ws as worker 0x[0-9a-f]{40} \(chain 7700, 1 × CPU\)/)
    expect(first.output()).toContain(`task ${task.task.slice(0, 8)}…${task.task.slice(-4)} (model silero): done in `)
    expect(first.output()).toMatch(/stopping: in-flight tasks dropped/)

    // Same data dir: the same key, the cached weights.
    const blobGets = node.state.blobGets
    const second = cli(args)
    await until(() => node.state.registrations.length === 2, "the second registration")
    expect(node.state.registrations[1]!.address).toBe(key.publicKey.address)
    expect(second.output()).not.toMatch(/made a new worker key/)

    const [table, listed] = await Promise.all([
      within(
        (async () => {
          const p = cli(["worker", "list", "--rpc", node.url])
          await p.exited
          return p.output()
        })(),
        WAIT_MS,
        "worker list"
      ),
      within(
        (async () => {
          const p = cli(["worker", "list", "--rpc", node.url, "--json"])
          await p.exited
          return p.output()
        })(),
        WAIT_MS,
        "worker list --json"
      )
    ])
    expect(table.split("\n")[0]).toMatch(/^WORKER\s+CLASS\s+DEVICES\s+ONLINE\s+IN-FLIGHT\s+TASKS\s+REPUTATION\s+ENDPOINT$/)
    expect(table).toContain(key.publicKey.address)
    const views = JSON.parse(listed) as Array<{ id: string; gpuClass: string; online: boolean; endpoint: string }>
    expect(views.some((v) => v.id === key.publicKey.address && v.gpuClass === "CPU" && v.online && v.endpoint === "cli-test")).toBe(true)
    expect(node.state.blobGets).toBe(blobGets)

    // A worker that dies (SIGKILL) just goes away; the node sees its connection close.
    second.child.kill("SIGKILL")
    expect((await within(second.exited, 10_000, "exit after SIGKILL")).signal).toBe("SIGKILL")
  })

  it("a bad option is one readable line and exit 1", async () => {
    const p = cli(["worker", "start", "--gpu-class", "CPU", "--devices", "0", "--data-dir", join(tmpdir(), "topai-never-made"), "--rpc", node.url])
    const exit = await within(p.exited, WAIT_MS, "exit")
    expect(exit.code).toBe(1)
    expect(p.output().trim()).toBe("error: --devices must be from 1 to 1024, got 0")
  })

  it("--node: a URL given twice (repeated or comma-separated) or not an RPC URL is one readable line and exit 1", async () => {
    const never = join(tmpdir(), "topai-never-made")
    const twice = cli(["worker", "start", "--gpu-class", "CPU", "--data-dir", never, "--node", node.url, "--node", `http://127.0.0.1:1/rpc,${node.url}`])
    expect((await within(twice.exited, WAIT_MS, "exit")).code).toBe(1)
    expect(twice.output().trim()).toBe(`error: --node ${node.url} is given twice: a compute node registers once with each node`)
    const bad = cli(["worker", "start", "--gpu-class", "CPU", "--data-dir", never, "--node", `${node.url},localhost:1`])
    expect((await within(bad.exited, WAIT_MS, "exit")).code).toBe(1)
    expect(bad.output().trim()).toBe(`error: --node must be ws://HOST:PORT/ws or http://HOST:PORT/rpc, got "localhost:1"`)
  })
})
