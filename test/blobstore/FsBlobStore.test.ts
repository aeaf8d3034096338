import { mkdtempSync, rmSync, writeFileSync, readdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHash, randomBytes } from "node:crypto"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { makeFsBlobStore } from "../../infra/blobstore/FsBlobStore.js"

const dirs: Array<string> = []
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), "topai-blobs-"))
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const sha = (b: Uint8Array) => `0x${createHash("sha256").update(b).digest("hex")}`
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(e))

describe("FsBlobStore", () => {
  it("stores by sha256, returns the same bytes, and is idempotent", async () => {
    const store = makeFsBlobStore(fresh())
    const bytes = randomBytes(100_000)
    const info = await Effect.runPromise(store.put(bytes))
    expect(info).toEqual({ hash: sha(bytes), size: bytes.length })
    expect(await Effect.runPromise(store.has(info.hash))).toBe(true)
    expect(Buffer.from(await Effect.runPromise(store.get(info.hash))).equals(bytes)).toBe(true)
    expect(await Effect.runPromise(store.put(bytes))).toEqual(info)
  })

  it("streams chunks in, checking the declared hash and the size limit before the blob exists", async () => {
    const dir = fresh()
    const store = makeFsBlobStore(dir)
    const bytes = randomBytes(300_000)
    const chunks = Stream.fromIterable([bytes.subarray(0, 100_000), bytes.subarray(100_000)])
    expect(await Effect.runPromise(store.putStream(chunks, sha(bytes), 1 << 20))).toEqual({ hash: sha(bytes), size: bytes.length })

    const wrong = await run(store.putStream(Stream.make(randomBytes(10)), sha(Buffer.from("other")), 1 << 20))
    expect(wrong._tag === "Left" && wrong.left.reason).toBe("HashMismatch")
    expect(await Effect.runPromise(store.has(sha(Buffer.from("other"))))).toBe(false)

    const big = randomBytes(2_000)
    const tooLarge = await run(store.putStream(Stream.make(big), sha(big), 1_000))
    expect(tooLarge._tag === "Left" && tooLarge.left.reason).toBe("TooLarge")
    expect(readdirSync(dir).filter((f) => f.startsWith(".tmp-"))).toEqual([]) // no temp file left behind
  })

  it("refuses a blob whose file was changed on disk, and unknown or malformed hashes", async () => {
    const store = makeFsBlobStore(fresh())
    const info = await Effect.runPromise(store.put(Buffer.from("weights")))
    writeFileSync(await Effect.runPromise(store.path(info.hash)), "tampered")
    const corrupt = await run(store.get(info.hash))
    expect(corrupt._tag === "Left" && corrupt.left.reason).toBe("Corrupt")
    const missing = await run(store.get(sha(Buffer.from("nothing"))))
    expect(missing._tag === "Left" && missing.left.reason).toBe("NotFound")
    const bad = await run(store.get("../../etc/passwd"))
    expect(bad._tag === "Left" && bad.left.reason).toBe("BadHash")
  })
})
