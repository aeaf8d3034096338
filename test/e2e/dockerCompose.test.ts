/**
 * docker-compose.yml cannot run here (no Docker), so it is checked against
 * the CLI it drives: every service builds the repo's image, every flag of
 * every command is one its `topai` subcommand takes, the `configs` service
 * run for real (its volume a temp dir) writes configs that `topai node start
 * --config` accepts (its own config check, `loadValidatorConfig`) and keeps
 * them at the next start; each validator service names its own config,
 * publishes its RPC port and reaches the others at their service names and
 * ports; the compute nodes serve every validator.
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { loadValidatorConfig } from "../../src/cli/commands/validator.js"
import { cleanup, makeTempDir, REPO_ROOT, runCli } from "./support/processes.js"

interface Service {
  readonly build?: string
  readonly command: ReadonlyArray<string>
  readonly depends_on?: ReadonlyArray<string> | Record<string, { readonly condition: string }>
  readonly ports?: ReadonlyArray<string>
  readonly volumes?: ReadonlyArray<string>
  readonly stop_signal?: string
}

const compose = parse(readFileSync(join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
  readonly services: Record<string, Service>
  readonly volumes: Record<string, unknown>
}
const services = Object.entries(compose.services)
const validators = services.filter(([name]) => /^validator-\d+$/.test(name))
const workers = services.filter(([name]) => /^worker-\d+$/.test(name))

/** The subcommand words of a command (up to its first flag). */
const subcommand = (command: ReadonlyArray<string>) => command.slice(0, command.findIndex((a) => a.startsWith("--")))
/** The value after `flag` (every occurrence). */
const valuesOf = (command: ReadonlyArray<string>, flag: string) => command.flatMap((a, i) => (a === flag ? [command[i + 1]!] : []))

afterAll(cleanup)

describe("docker-compose.yml", () => {
  it("one service per validator (process per validator) and compute nodes serving them all; every service builds the image and stops on SIGINT", () => {
    expect(validators.map(([name]) => name)).toEqual(["validator-0", "validator-1", "validator-2", "validator-3"])
    expect(workers.length).toBeGreaterThanOrEqual(1)
    const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8")
    expect(dockerfile).toContain('ENTRYPOINT ["node", "--import", "tsx", "src/cli/main.ts"]')
    for (const dir of [...dockerfile.matchAll(/^COPY (\S+) \.\/\1$/gm)].map((m) => m[1]!)) expect(existsSync(join(REPO_ROOT, dir)), dir).toBe(true)
    for (const [name, s] of services) {
      expect({ name, build: s.build, stop: s.stop_signal }).toEqual({ name, build: ".", stop: "SIGINT" })
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})
      for (const d of deps) expect(compose.services[d], `${name} depends on ${d}`).toBeDefined()
      for (const v of s.volumes ?? []) expect(compose.volumes, `${name}'s volume ${v}`).toHaveProperty(v.split(":")[0]!)
    }
  })

  it("every flag of every service's command is one its topai subcommand takes", async () => {
    const commands = new Map(services.map(([, s]) => [subcommand(s.command).join(" "), s.command]))
    for (const [sub, command] of commands) {
      const help = await runCli([...sub.split(" "), "--help"])
      expect(help.code, help.stderr).toBe(0)
      const usage = help.stdout.split("\n").find((l) => l.startsWith("$ "))!
      const known = new Set(usage.match(/--[a-z-]+/g))
      for (const flag of command.filter((a) => a.startsWith("--"))) expect(known, `topai ${sub} ${flag}`).toContain(flag)
    }
  }, 60_000)

  it("the configs service writes configs that `node start --config` accepts, and keeps them at the next start; validators reach each other by service name; workers serve every validator", async () => {
    const volume = makeTempDir("compose")
    // A container path on the `devnet` volume, here.
    const configs = compose.services["configs"]!
    expect(configs.volumes).toEqual(["devnet:/config"])
    const local = (path: string) => path.replace(/^\/config(?=\/|$)/, volume)
    const run = await runCli(configs.command.map(local))
    expect(run.code, run.stderr).toBe(0)
    const genesis = readFileSync(join(volume, "genesis.json"), "utf8")
    const again = await runCli(configs.command.map(local))
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain("kept")
    expect(readFileSync(join(volume, "genesis.json"), "utf8")).toBe(genesis)

    const loaded = new Map<string, Effect.Effect.Success<ReturnType<typeof loadValidatorConfig>>>()
    for (const [name, s] of validators) {
      expect(subcommand(s.command)).toEqual(["node", "start"])
      expect(s.volumes).toEqual(["devnet:/config"])
      expect(s.depends_on).toEqual({ configs: { condition: "service_completed_successfully" } })
      const [file] = valuesOf(s.command, "--config")
      const v = await Effect.runPromise(loadValidatorConfig(local(file!)))
      loaded.set(name, v)
      expect(name).toBe(`validator-${v.config.validator}`)
      expect(v.dataDir.startsWith(volume)).toBe(true)
      expect({ rpc: v.config.rpc.host, consensus: v.config.consensus.host }).toEqual({ rpc: "0.0.0.0", consensus: "0.0.0.0" })
      expect(s.ports).toEqual([`${v.config.rpc.port}:${v.config.rpc.port}`])
    }
    for (const [name, v] of loaded) {
      // Every other validator, at its service name and the ports its own config listens on.
      expect(v.config.peers.map((p) => p.validator).sort()).toEqual([...loaded.values()].map((o) => o.config.validator).filter((i) => i !== v.config.validator).sort())
      for (const p of v.config.peers) {
        const peer = loaded.get(`validator-${p.validator}`)!
        expect({ name, url: p.url, rpc: p.rpc }).toEqual({
          name,
          url: `ws://validator-${p.validator}:${peer.config.consensus.port}/consensus`,
          rpc: `ws://validator-${p.validator}:${peer.config.rpc.port}/ws`
        })
      }
    }
    for (const [name, s] of workers) {
      expect(subcommand(s.command)).toEqual(["worker", "start"])
      const nodes = valuesOf(s.command, "--node")
      expect({ name, nodes }).toEqual({ name, nodes: [...loaded].map(([service, v]) => `ws://${service}:${v.config.rpc.port}/ws`) })
      expect(valuesOf(s.command, "--data-dir")).toEqual(s.volumes!.map((v) => v.split(":")[1]))
    }
  }, 60_000)
})
