/**
 * The economy's doors through the real `topai` CLI: `rewards epoch|show`,
 * `supply`, `gov set-shard-shares`, `worker stake|unbond`, and `audit
 * replay` over the reward ledgers.
 *
 * Offline first (no node): --help of each new command, and bad input — a
 * single `error: ...` line, exit 1, before anything is signed. Then one node
 * process with short epochs (3 beacon blocks of 200 ms): the supply, epoch
 * 0's ledger, a statement, governance accepted from the governance key (dev
 * account 0) and refused from another with the chain's reason, the new
 * shares in the ledger of the epoch they take effect in, a stake bonded and
 * partly unbonded, a second owner's bond counted and unbonded by it alone,
 * and the audit rebuilding every ledger once the node is stopped.
 *
 * Each CLI process costs ~2–4 s of CPU to start: ~25 of them, two at a time.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DEV } from "./support/chain.js"
import { auditArgs, cleanup, expectUserError, freePort, makeTempDir, runCli, runCliAll, spawnNode, type CliResult, type NodeProcess } from "./support/processes.js"

const EPOCH_FLAGS = ["--epoch-blocks", "3", "--beacon-interval-ms", "200"]
const hexKey = (i: number) => "0x" + Buffer.from(DEV[i]!.key.exportBytes()).toString("hex")

const ok = <A>(r: CliResult): A => {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 })
  return JSON.parse(r.stdout) as A
}

afterAll(cleanup)

describe("economy commands without a node", () => {
  it("--help of each: exit 0, usage and description", async () => {
    const commands: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["rewards", "epoch"], /whole reward ledger/],
      [["rewards", "show"], /task mining \+ launch reward \+ service fees − computing fees/],
      [["supply"], /reserve, minted, burned, circulating/],
      [["gov", "set-shard-shares"], /must sum to 1000000 ppm/],
      [["worker", "stake"], /Bond --amount as a worker's stake/],
      [["worker", "unbond"], /Ask for --amount of a worker's bonded stake back/]
    ]
    const results = await runCliAll(commands.map(([args]) => [...args, "--help"]))
    results.forEach((r, i) => {
      const [args, description] = commands[i]!
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" })
      expect(r.stdout).toMatch(/USAGE/)
      expect(r.stdout).toMatch(description)
    })
  }, 120_000)

  it("bad input: one `error: ...` line, exit 1, nothing signed or sent", async () => {
    const down = `ws://127.0.0.1:${await freePort()}/ws`
    const key = hexKey(0)
    const gov = (ai: string, beacon: string, transfer: string, k = key) =>
      ["gov", "set-shard-shares", "--ai", ai, "--beacon", beacon, "--transfer", transfer, "--key", k, "--rpc", down]
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["rewards", "epoch", "x1", "--rpc", down], /^error: EPOCH must be a whole number ≥ 0, got "x1"$/],
      [["rewards", "show", "0x1234", "--rpc", down], /^error: ADDRESS must be 0x followed by 40 hex digits, got "0x1234"$/],
      [gov("50%", "30%", "30%"), /^error: the shares must sum to 1000000 ppm \(100%\), got 500000 \+ 300000 \+ 300000 = 1100000 ppm \(110%\)$/],
      [gov("500000", "250000", "240000"), /^error: the shares must sum to 1000000 ppm \(100%\), got 500000 \+ 250000 \+ 240000 = 990000 ppm/],
      [gov("abc", "25%", "25%"), /^error: --ai must be parts per million \(0 to 1000000\) or a percentage like 50% or 12\.5%, got "abc"$/],
      [gov("50%", "25%", "25%", "zz"), /^error: --key must be 32 bytes of hex/],
      [["worker", "stake", "--amount", "0", "--key", key, "--rpc", down], /^error: --amount must be more than 0$/],
      [["worker", "unbond", "--amount", "5", "--worker", "nope", "--key", key, "--rpc", down], /^error: --worker must be 0x followed by 40 hex digits, got "nope"$/],
      [["supply", "--rpc", down], /^error: cannot reach the node at ws:\/\/127\.0\.0\.1:\d+\/ws/]
    ]
    const results = await runCliAll(cases.map(([args]) => args))
    cases.forEach(([args, message], i) => expectUserError(args, results[i]!, message))
  }, 120_000)
})

describe("economy commands on a node (epochs of 3 × 200 ms)", () => {
  let node: NodeProcess
  let rpc: ReadonlyArray<string>

  beforeAll(async () => {
    node = await spawnNode({ dataDir: makeTempDir("economy-cli"), extraArgs: EPOCH_FLAGS })
    rpc = ["--rpc", node.url]
  })

  const waitClosed = async (epoch: number): Promise<void> => {
    const deadline = performance.now() + 20_000
    for (;;) {
      const s = ok<{ lastClosed: number | null }>(await runCli(["supply", ...rpc, "--json"]))
      if (s.lastClosed !== null && s.lastClosed >= epoch) return
      if (performance.now() > deadline) throw new Error(`epoch ${epoch} not closed in time`)
    }
  }

  it("supply, rewards epoch, rewards show, governance, stake and unbond, then the audit", async () => {
    await waitClosed(0)

    // The supply balances; the text says so.
    const [supplyJson, supplyText, ledgerText, ledgerJson] = await runCliAll([
      ["supply", ...rpc, "--json"],
      ["supply", ...rpc],
      ["rewards", "epoch", "0", ...rpc],
      ["rewards", "epoch", "0", ...rpc, "--json"]
    ])
    const supply = ok<{ balanced: boolean; totalSupply: string; reserveRemaining: string; minted: string; circulating: string }>(supplyJson!)
    expect(supply.balanced).toBe(true)
    expect(BigInt(supply.reserveRemaining) + BigInt(supply.minted)).toBeGreaterThan(0n)
    expect(supplyText!.code).toBe(0)
    expect(supplyText!.stdout).toMatch(/^ {2}reserve +\d+/m)
    expect(supplyText!.stdout).toMatch(/^balanced: yes$/m)
    // Epoch 0: closed, the header last, its totals printed.
    const ledger = ok<{ epoch: number; closed: boolean; events: ReadonlyArray<{ _tag: string; issuance?: string }> }>(ledgerJson!)
    expect(ledger).toMatchObject({ epoch: 0, closed: true })
    expect(ledger.events[ledger.events.length - 1]!._tag).toBe("EpochClosed")
    expect(ledgerText!.code).toBe(0)
    expect(ledgerText!.stdout).toMatch(/^epoch 0 /)
    expect(ledgerText!.stdout).toMatch(/^totals$/m)
    expect(ledgerText!.stdout).toContain(`issuance`)

    // An epoch not closed yet, and an address with nothing: clear answers.
    const [future, statement, statementText] = await runCliAll([
      ["rewards", "epoch", "100000", ...rpc],
      ["rewards", "show", DEV[5]!.address, ...rpc, "--json"],
      ["rewards", "show", DEV[5]!.address, ...rpc]
    ])
    expectUserError(["rewards", "epoch", "100000"], future!, /^error: epoch 100000 is not closed yet/)
    const st = ok<{ address: string; total: Record<string, string>; epochs: ReadonlyArray<unknown> }>(statement!)
    expect(st.address).toBe(DEV[5]!.address)
    expect(st.total["net"]).toBe("0")
    expect(statementText!.stdout).toMatch(/as a provider: task mining 0 \+ launch reward 0 \+ service fees 0 − computing fees 0 = net 0/)

    // Governance: accepted from dev account 0 (the devnet's governance key), refused from another with the chain's reason.
    const [accepted, refused] = await runCliAll([
      ["gov", "set-shard-shares", "--ai", "60%", "--beacon", "200000", "--transfer", "20%", "--key", hexKey(0), ...rpc, "--json"],
      ["gov", "set-shard-shares", "--ai", "60%", "--beacon", "20%", "--transfer", "20%", "--key", hexKey(1), ...rpc]
    ])
    const g = ok<{ accepted: boolean; effectiveFromEpoch: number; shares: Record<string, string> }>(accepted!)
    expect(g.accepted).toBe(true)
    expect(g.shares).toEqual({ ai: "600000", beacon: "200000", transfer: "200000" })
    expectUserError(["gov", "from dev 1"], refused!, /^error: transaction rejected \(NotGovernance\)/)
    // The shares are in effect from the next epoch at the latest.
    await waitClosed(g.effectiveFromEpoch)
    const later = ok<{ events: ReadonlyArray<{ _tag: string; shardShares?: Record<string, string> }> }>(
      await runCli(["rewards", "epoch", String(g.effectiveFromEpoch), ...rpc, "--json"])
    )
    expect(later.events[later.events.length - 1]!.shardShares).toEqual({ ai: "600000", beacon: "200000", transfer: "200000" })

    // A stake for the key's own address, then for another worker; part of it unbonded; too much refused.
    const worker = DEV[7]!.address
    const staked = ok<{ worker: string; bonded: string; unbonding: string }>(
      await runCli(["worker", "stake", "--worker", worker, "--amount", "1000000", "--key", hexKey(6), ...rpc, "--json"])
    )
    expect(staked).toMatchObject({ worker, bonded: "1000000", unbonding: "0" })
    const [unbonded, own] = await runCliAll([
      ["worker", "unbond", "--worker", worker, "--amount", "400000", "--key", hexKey(6), ...rpc, "--json"],
      ["worker", "stake", "--amount", "5000", "--key", hexKey(8), ...rpc]
    ])
    expect(ok<{ bonded: string; unbonding: string }>(unbonded!)).toMatchObject({ bonded: "600000" })
    expect(own!.code).toBe(0)
    expect(own!.stdout).toContain(`worker ${DEV[8]!.address}  bonded 5000  unbonding 0`)
    const tooMuch = await runCli(["worker", "unbond", "--worker", worker, "--amount", "600001", "--key", hexKey(6), ...rpc])
    expectUserError(
      ["unbond too much"],
      tooMuch,
      new RegExp(`^error: ${DEV[6]!.address} has 600000 bonded to worker ${worker}; cannot unbond 600001 \\(an account unbonds only its own bond\\)$`)
    )

    // A second owner, with a key from a 0600 file: its bond counts toward the worker's stake, it can unbond
    // only its own bond, and only it can (the first owner's bond stays whole).
    const otherKey = join(makeTempDir("other-key"), "other.key")
    writeFileSync(otherKey, `${hexKey(9)}\n`, { mode: 0o600 })
    const second = ok<{ bonded: string; owner: string; ownerBonded: string }>(
      await runCli(["worker", "stake", "--worker", worker, "--amount", "7", "--key-file", otherKey, ...rpc, "--json"])
    )
    expect(second).toMatchObject({ bonded: "600007", owner: DEV[9]!.address, ownerBonded: "7" })
    const overOwn = await runCli(["worker", "unbond", "--worker", worker, "--amount", "8", "--key-file", otherKey, ...rpc])
    expectUserError(
      ["unbond over one's own bond"],
      overOwn,
      new RegExp(`^error: ${DEV[9]!.address} has 7 bonded to worker ${worker}; cannot unbond 8 \\(an account unbonds only its own bond\\)$`)
    )
    const back = await runCli(["worker", "unbond", "--worker", worker, "--amount", "7", "--key-file", otherKey, ...rpc])
    expect(back.code, back.stderr).toBe(0)
    // (Unbonding stake may already be released by the short epochs' closes.)
    expect(back.stdout).toContain(`worker ${worker}  bonded 600000  unbonding `)
    expect(back.stdout).toContain(`of which ${DEV[9]!.address}'s own: bonded 0  unbonding `)
    const firstOwner = ok<{ ownerBonded: string }>(await runCli(["worker", "stake", "--worker", worker, "--amount", "1", "--key", hexKey(6), ...rpc, "--json"]))
    expect(firstOwner).toMatchObject({ ownerBonded: "600001" })

    // Stopped, the audit rebuilds every ledger from the log and finds them identical.
    expect((await node.stop("SIGINT")).code).toBe(0)
    const [audit, one] = await runCliAll([
      auditArgs(node.dataDir),
      [...auditArgs(node.dataDir), "--stream", "reward-epoch-0"]
    ])
    expect(audit!.code, audit!.stderr + audit!.stdout).toBe(0)
    expect(audit!.stdout).toMatch(/every epoch ledger rebuilds identically/)
    expect(audit!.stdout).toMatch(/economy: \d+ epochs ended in the log, rebuilt; ledgers of epochs 0–\d+ compared field by field: identical/)
    expect(one!.code, one!.stderr + one!.stdout).toBe(0)
    expect(one!.stdout).toMatch(/ledgers of epochs 0 compared field by field: identical/)
  }, 120_000)
})
