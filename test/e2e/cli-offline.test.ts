/**
 * `topai` without a node, as a user meets it first: help for every command,
 * and argument errors that never need the network — each a single readable
 * `error: ...` line with exit code 1, never a stack trace; a node that is
 * down is said so at once, not after a timeout.
 *
 * Each CLI process costs ~2 s of CPU to start here, so this file runs only
 * the processes its checks need, two at a time (the ones that need a running
 * node are in cli.test.ts).
 */
import { afterAll, describe, expect, it } from "vitest"
import { DEV } from "./support/chain.js"
import { cleanup, expectUserError, freePort, makeTempDir, runCliAll } from "./support/processes.js"

afterAll(cleanup)

describe("topai CLI without a node", () => {
  it("--help of topai and of every command: exit 0, usage and description", async () => {
    const commands: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [[], /TOP AI Network node and tools/],
      [["node", "start"], /Run a one-process devnet node/],
      [["key", "new"], /Make a new secp256k1 key/],
      [["key", "dev"], /Show deterministic dev account N/],
      [["status"], /Show the node's chain id, each shard's height and the beacon's epoch/],
      [["balance"], /Show an account's balance, nonce and shard/],
      [["transfer"], /Send base units to an address/],
      [["block"], /Show one block of one shard/],
      [["audit", "replay"], /Offline: check every hash chain/]
    ]
    const results = await runCliAll(commands.map(([args]) => [...args, "--help"]))
    results.forEach((r, i) => {
      const [args, description] = commands[i]!
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" })
      expect(r.stdout).toMatch(/USAGE/)
      expect(r.stdout).toMatch(/DESCRIPTION/)
      expect(r.stdout).toMatch(description)
      expect(r.stdout).not.toMatch(/\u001b\[/) // runCli strips ANSI; nothing left over
    })
    // The top-level help lists every command.
    for (const command of ["node start", "key new", "key dev", "status", "balance", "transfer", "block", "audit replay"]) {
      expect(results[0]!.stdout).toContain(`- ${command}`)
    }
  })

  it("bad arguments, a node that is down, a missing data dir: one `error: ...` line, exit code 1", async () => {
    const key = "0x" + Buffer.from(DEV[0]!.key.exportBytes()).toString("hex")
    const to = DEV[1]!.address
    const down = `ws://127.0.0.1:${await freePort()}/ws` // nothing listens there
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["transfer", "--key", "zz", "--to", to, "--amount", "5", "--rpc", down], /^error: --key must be 32 bytes of hex/],
      [["transfer", "--key", key, "--to", to, "--amount", "-5", "--rpc", down], /^error: --amount must be a whole number of base units, got "-5"$/],
      [["transfer", "--key", key, "--to", to, "--amount", "0", "--rpc", down], /^error: --amount must be more than 0$/],
      [["status", "--rpc", down], /^error: cannot reach the node at ws:\/\/127\.0\.0\.1:\d+\/ws \(connect ECONNREFUSED .*\); is it running\?/],
      [["audit", "replay", "--data-dir", "/nonexistent"], /^error: no event store at \/nonexistent\/events.db$/],
      [["node", "start", "--run-deadline-max-ms", "0", "--data-dir", makeTempDir("run-cap")], /^error: --run-deadline-max-ms must be a whole number of milliseconds > 0, got 0$/]
    ]
    const results = await runCliAll(cases.map(([args]) => args))
    cases.forEach(([args, message], i) => expectUserError(args, results[i]!, message))
    // A node that is down is reported by the refused connection, not after the 30 s call timeout: the
    // CLI run ended on its own before the harness's CLI_TIMEOUT_MS (20 s) would have killed it.
    expect(results[3]!.timedOut).toBe(false)
  })
})
