/**
 * Private keys off the command line: `--key-file` (a 0600 file, refused when
 * group or others can use it), `TOPAI_KEY`, or `--key`; key files the CLI
 * writes (`topai key … --out`, worker keys, validator keys) are 0600. Real
 * files in a temp dir, the real CLI for the commands.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { Effect, Either, Option } from "effect"
import { bytesToHex } from "../../domain/chain/hex.js"
import { devKey } from "../../domain/chain/keys.js"
import { KEY_ENV, loadKey, loadOptionalKey, type KeySource } from "../../src/cli/keySource.js"
import { readSecretFile, writeSecretFileSync } from "../../src/cli/secretFile.js"
import { loadOrCreateWorkerKey, WORKER_KEY_FILE } from "../../src/cli/commands/worker.js"
import { cleanup, expectUserError, runCli } from "../e2e/support/processes.js"

const dirs: Array<string> = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "topai-keys-"))
  dirs.push(d)
  return d
}
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  await cleanup()
})

const KEY = devKey(3)
const HEX = bytesToHex(KEY.exportBytes())
const source = (o: { hex?: string; file?: string }): KeySource => ({ hex: Option.fromNullable(o.hex), file: Option.fromNullable(o.file) })
const failure = <A>(e: Effect.Effect<A, Error>): string => {
  const r = Effect.runSync(Effect.either(e))
  if (Either.isRight(r)) throw new Error("expected a failure")
  return r.left.message
}
const keyFile = (text: string, mode = 0o600): string => {
  const file = join(tempDir(), "k")
  writeFileSync(file, text, { mode })
  chmodSync(file, mode)
  return file
}

describe("secret files", () => {
  it("are written 0600, even over a stale world-readable temporary file", () => {
    const file = join(tempDir(), "key")
    writeFileSync(`${file}.tmp`, "stale", { mode: 0o644 })
    writeSecretFileSync(file, "secret\n")
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(readFileSync(file, "utf8")).toBe("secret\n")
  })

  it.each([0o644, 0o640, 0o604, 0o660, 0o602])("mode %o is refused, naming the file and the fix", (mode) => {
    const file = keyFile(HEX, mode)
    expect(failure(readSecretFile(file, "key file"))).toBe(
      `key file ${file} has mode ${mode.toString(8).padStart(4, "0")}: group or others can use it; run \`chmod 600 ${file}\` (and make a new key if others may have read it)`
    )
  })

  it("0600 and 0400 are read; a missing file is a clear error", () => {
    expect(Effect.runSync(readSecretFile(keyFile(HEX), "key file"))).toBe(HEX)
    expect(Effect.runSync(readSecretFile(keyFile(HEX, 0o400), "key file"))).toBe(HEX)
    const missing = join(tempDir(), "none")
    expect(failure(readSecretFile(missing, "key file"))).toMatch(new RegExp(`^cannot read key file ${missing}: ENOENT`))
  })
})

describe("where a command's key comes from", () => {
  const noEnv = {}
  it("--key-file: bare hex, or the JSON of `topai key new --json`, or a validator key file", () => {
    for (const text of [`${HEX}\n`, HEX.slice(2), JSON.stringify({ address: "x", privateKey: HEX }), JSON.stringify({ secp256k1: HEX, bls: HEX })]) {
      expect(Effect.runSync(loadKey(source({ file: keyFile(text) }), noEnv)).publicKey.address).toBe(KEY.publicKey.address)
    }
  })

  it("TOPAI_KEY when no option is given; an option wins over it", () => {
    const other = bytesToHex(devKey(4).exportBytes())
    expect(Effect.runSync(loadKey(source({}), { [KEY_ENV]: HEX })).publicKey.address).toBe(KEY.publicKey.address)
    expect(Effect.runSync(loadKey(source({ hex: other }), { [KEY_ENV]: HEX })).publicKey.address).toBe(devKey(4).publicKey.address)
  })

  it("refusals: nothing given, both options, a shared file, bad hex in a file or in TOPAI_KEY", () => {
    expect(failure(loadKey(source({}), noEnv))).toBe("no key: give --key-file PATH (mode 0600), set TOPAI_KEY, or give --key HEX")
    expect(failure(loadKey(source({ hex: HEX, file: "/x" }), noEnv))).toBe("give one of --key HEX or --key-file PATH, not both")
    expect(failure(loadKey(source({ file: keyFile(HEX, 0o644) }), noEnv))).toMatch(/has mode 0644: group or others can use it/)
    const junk = keyFile("not a key")
    expect(failure(loadKey(source({ file: junk }), noEnv))).toMatch(new RegExp(`^${junk}: must be 32 bytes of hex`))
    expect(failure(loadKey(source({ file: keyFile("{}") }), noEnv))).toMatch(/holds JSON without a "privateKey" string/)
    expect(failure(loadKey(source({}), { [KEY_ENV]: "0x12" }))).toMatch(/^TOPAI_KEY: must be 32 bytes of hex/)
  })

  it("an optional key without env (a worker's own key) ignores TOPAI_KEY", () => {
    expect(Option.isNone(Effect.runSync(loadOptionalKey(source({}), { env: false })))).toBe(true)
  })
})

describe("key files the CLI writes", () => {
  it("a worker key file is made 0600 and refused once group-readable", () => {
    const dir = tempDir()
    const made = Effect.runSync(loadOrCreateWorkerKey(dir))
    const file = join(dir, WORKER_KEY_FILE)
    expect(made.created).toBe(true)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(Effect.runSync(loadOrCreateWorkerKey(dir)).key.publicKey.address).toBe(made.key.publicKey.address)
    chmodSync(file, 0o640)
    expect(failure(loadOrCreateWorkerKey(dir))).toMatch(new RegExp(`^worker key file ${file} has mode 0640`))
  })

  it("topai key dev N --out FILE writes a 0600 file that --key-file reads, prints no private key, never overwrites; transfer refuses a shared key file before any network", async () => {
    const file = join(tempDir(), "dev1.key")
    const r = await runCli(["key", "dev", "1", "--out", file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(devKey(1).publicKey.address)
    expect(r.stdout).not.toContain(bytesToHex(devKey(1).exportBytes()).slice(2))
    expect(r.stdout).toContain(`private key in ${file} (mode 0600; use --key-file ${file})`)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(Effect.runSync(loadKey(source({ file }), {})).publicKey.address).toBe(devKey(1).publicKey.address)
    const again = await runCli(["key", "new", "--out", file])
    expectUserError(["key", "new", "--out"], again, new RegExp(`^error: ${file} already exists; a key file is never overwritten`))
    chmodSync(file, 0o644)
    const refused = await runCli(["transfer", "--key-file", file, "--to", devKey(2).publicKey.address, "--amount", "1", "--rpc", "ws://127.0.0.1:1/ws"])
    expectUserError(["transfer", "--key-file"], refused, new RegExp(`^error: key file ${file} has mode 0644: group or others can use it`))
  })
})
