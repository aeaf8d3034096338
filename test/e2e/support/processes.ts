/**
 * Real processes for the end-to-end tests: the `topai` CLI and a devnet node
 * started through it (`node --import tsx src/cli/main.ts ...`), free ports
 * from the OS, temp dirs, and one cleanup that kills every process and
 * removes every dir a test made — call it from afterEach/afterAll so a
 * failing test leaves nothing behind.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { expect } from "vitest"
import { bytesToHex } from "../../../domain/chain/hex.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { makeClient } from "../../../src/client/index.js"
import type { NodeStatus } from "../../../src/client/index.js"
import { freePort } from "../../support/freePort.js"

export const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url))
export const CLI_MAIN = join(REPO_ROOT, "src", "cli", "main.ts")

/** How long a node may take from spawn to answering node.status (tsx start + genesis or replay). */
export const NODE_READY_TIMEOUT_MS = 20_000
/** How long a stopped node may take to exit. */
export const NODE_STOP_TIMEOUT_MS = 10_000
/** A CLI invocation that takes longer than this is killed and reported as hung. */
export const CLI_TIMEOUT_MS = 20_000
const READY_POLL_INTERVAL_MS = 100
/** One status call's wait while polling for readiness: a loaded devnet (4 validators, benchmarks at the worker's first connection) can take seconds to answer one. */
const READY_CALL_TIMEOUT_MS = 5_000
/** A port taken between freePort() and the node's listen: try again with another. */
const SPAWN_ATTEMPTS_MAX = 3

// ---------------------------------------------------------------- cleanup registry

const liveChildren = new Set<ChildProcess>()
const tempDirs = new Set<string>()

/** A fresh temp dir, removed by `cleanup()`. */
export const makeTempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), `topai-e2e-${prefix}-`))
  tempDirs.add(dir)
  return dir
}

const waitForExit = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** Kill (SIGKILL) every process still running and remove every temp dir. */
export const cleanup = async (): Promise<void> => {
  const children = [...liveChildren]
  liveChildren.clear()
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await Promise.all(children.map(waitForExit))
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

const track = (child: ChildProcess): ChildProcess => {
  liveChildren.add(child)
  child.once("exit", () => liveChildren.delete(child))
  return child
}

// ---------------------------------------------------------------- ports

export { freePort }

export const wsUrl = (port: number): string => `ws://127.0.0.1:${port}/ws`

// ---------------------------------------------------------------- the CLI

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
  /** Killed after `timeoutMs`: the command hung. */
  readonly timedOut: boolean
}

const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g
export const stripAnsi = (text: string): string => text.replace(ANSI, "")

/** Run `topai ARGS` as a user would, to its end (or kill it after `timeoutMs`). */
export const runCli = (args: ReadonlyArray<string>, options: { readonly timeoutMs?: number } = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = track(
      spawn(process.execPath, ["--import", "tsx", CLI_MAIN, ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
    )
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, options.timeoutMs ?? CLI_TIMEOUT_MS)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr), ms: performance.now() - started, timedOut })
    })
  })

/**
 * `topai audit replay` of `dataDir` with the genesis the operator holds: the
 * node's own genesis file, from `genesisDir` (the untouched original when
 * `dataDir` is a tampered copy).
 */
export const auditArgs = (dataDir: string, genesisDir: string = dataDir): Array<string> => [
  "audit",
  "replay",
  "--data-dir",
  dataDir,
  "--genesis",
  join(genesisDir, "genesis.json")
]

/** A key's private bytes as 0x-hex (what `--key-file` files hold). */
export const hexKey = (key: PrivateKey): string => bytesToHex(key.exportBytes())

/** A CLI result that must have succeeded, its stdout parsed as JSON (the whole stderr in the diff when it failed). */
export const expectJson = <A>(r: CliResult): A => {
  expect({ code: r.code, timedOut: r.timedOut, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, timedOut: false, stderr: "" })
  return JSON.parse(r.stdout) as A
}

/** `runCli` that expects exit 0 and parses stdout as JSON. */
export const runCliJson = async <A = unknown>(args: ReadonlyArray<string>): Promise<A> => {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`topai ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return JSON.parse(r.stdout) as A
}

// ---------------------------------------------------------------- a node

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface NodeProcess {
  readonly dataDir: string
  readonly port: number
  readonly url: string
  readonly pid: number
  /** Everything the node printed so far (stdout and stderr). */
  readonly output: () => string
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exited>
  /** Send `signal` (default SIGINT, as Ctrl-C) and wait for the exit; SIGKILL after `timeoutMs`. */
  readonly stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<Exited & { readonly forced: boolean }>
}

export interface SpawnNodeOptions {
  readonly dataDir: string
  /** Default: a free port from the OS. */
  readonly port?: number | undefined
  readonly extraArgs?: ReadonlyArray<string> | undefined
  readonly readyTimeoutMs?: number | undefined
  /** The topai command that runs the node (default `node start`; `devnet` for a BFT devnet). */
  readonly command?: ReadonlyArray<string> | undefined
}

const statusOnce = (url: string): Promise<NodeStatus> =>
  Effect.runPromise(
    makeClient(url).pipe(
      Effect.flatMap((client) => client.node.status()),
      Effect.timeoutFail({ duration: READY_CALL_TIMEOUT_MS, onTimeout: () => new Error("status call timed out") }),
      Effect.scoped
    )
  )

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

class PortTaken extends Error {}

/**
 * The node the end-to-end tests run: `node start` (one producer a shard), or
 * with TOPAI_E2E_NODE=devnet the 4-validator BFT devnet (validator 0 serves
 * the same RPC on the same port): the earlier issues' stories on consensus.
 */
const DEFAULT_NODE_COMMAND: ReadonlyArray<string> =
  process.env.TOPAI_E2E_NODE === "devnet" ? ["devnet", "--validators", "4"] : ["node", "start"]

const spawnOnce = async (options: SpawnNodeOptions, port: number): Promise<NodeProcess> => {
  // Chain tests run the node without its in-process compute node (a worker-* stream and an inference
  // thread they do not need); tests of the AI shard choose their workers with extraArgs.
  const extra = options.extraArgs ?? []
  const workers = extra.includes("--workers") ? [] : ["--workers", "0"]
  const args = ["--import", "tsx", CLI_MAIN, ...(options.command ?? DEFAULT_NODE_COMMAND), "--data-dir", options.dataDir, "--port", String(port), ...workers]
  const child = track(
    spawn(process.execPath, [...args, ...(options.extraArgs ?? [])], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
  )
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<Exited>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  let hasExited = false
  void exited.then(() => (hasExited = true))

  const url = wsUrl(port)
  const deadline = performance.now() + (options.readyTimeoutMs ?? NODE_READY_TIMEOUT_MS)
  for (;;) {
    if (hasExited) {
      if (/EADDRINUSE|address already in use/i.test(output)) throw new PortTaken(output)
      throw new Error(`node exited before it was ready (${JSON.stringify(await exited)}):\n${output}`)
    }
    const ready = await statusOnce(url).then(
      () => true,
      () => false
    )
    if (ready) break
    if (performance.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`node not ready on ${url} within ${options.readyTimeoutMs ?? NODE_READY_TIMEOUT_MS} ms:\n${output}`)
    }
    await sleep(READY_POLL_INTERVAL_MS)
  }

  const stop = async (signal: NodeJS.Signals = "SIGINT", timeoutMs = NODE_STOP_TIMEOUT_MS) => {
    if (!hasExited) child.kill(signal)
    let forced = false
    const timer = setTimeout(() => {
      forced = true
      child.kill("SIGKILL")
    }, timeoutMs)
    const result = await exited
    clearTimeout(timer)
    return { ...result, forced }
  }
  return { dataDir: options.dataDir, port, url, pid: child.pid!, output: () => output, exited, stop }
}

/** Start `topai node start` on `dataDir` and wait until node.status answers. */
export const spawnNode = async (options: SpawnNodeOptions): Promise<NodeProcess> => {
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort())
    try {
      return await spawnOnce(options, port)
    } catch (error) {
      if (!(error instanceof PortTaken) || options.port !== undefined || attempt >= SPAWN_ATTEMPTS_MAX) throw error
    }
  }
}

/**
 * Run CLI invocations, at most `concurrency` at a time (each costs ~2 s of
 * CPU to start: tsx and Effect's ESM modules), results in order.
 */
export const runCliAll = async (
  invocations: ReadonlyArray<ReadonlyArray<string>>,
  concurrency = 2
): Promise<ReadonlyArray<CliResult>> => {
  const results: Array<CliResult> = []
  let next = 0
  const worker = async () => {
    while (next < invocations.length) {
      const i = next++
      results[i] = await runCli(invocations[i]!)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return results
}

/** How a user error must look: exit code 1, nothing on stdout, one line on stderr matching `message`, no stack trace. */
export const expectUserError = (args: ReadonlyArray<string>, r: CliResult, message: RegExp): void => {
  expect({ args, code: r.code, timedOut: r.timedOut, stdout: r.stdout }).toEqual({ args, code: 1, timedOut: false, stdout: "" })
  const lines = r.stderr.trimEnd().split("\n")
  expect({ args, lines }).toEqual({ args, lines: [expect.stringMatching(message)] })
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr).not.toMatch(/\.ts:\d+/)
}

/** What `topai audit replay --json` reports of the AI streams (the fields the e2e tests check). */
export interface AiAuditReport {
  readonly ok: boolean
  readonly ai: { readonly tasks: { readonly total: number; readonly byStatus: Record<string, number>; readonly charged: string }; readonly escrows: { readonly captured: string } }
}

/** `topai audit replay` of a stopped node's data dir with the operator's genesis: it exits 0 and reports ok; its report. */
export const auditAi = async (dataDir: string): Promise<AiAuditReport> => {
  const audit = await runCli([...auditArgs(dataDir), "--json"])
  expect(audit.code, audit.stderr + audit.stdout).toBe(0)
  const report = JSON.parse(audit.stdout) as AiAuditReport
  expect(report.ok).toBe(true)
  return report
}
