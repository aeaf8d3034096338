/**
 * The blob store on the filesystem: `<dir>/<aa>/<hash>` files, written to a
 * temp file, fsynced and renamed into place, so a crash never leaves a
 * partial blob under a real name. sha256 by node:crypto (~1.7 GB/s here).
 */
import { createHash, randomBytes } from "node:crypto"
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Effect, Layer, Stream } from "effect"
import { BLOB_HASH, BlobError, BlobStore } from "./BlobStore.js"
import type { BlobInfo, BlobStoreShape } from "./BlobStore.js"

const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`

const io = (hash: string) => (e: unknown) =>
  new BlobError({ reason: "Io", hash, detail: e instanceof Error ? e.message : String(e) })

export const makeFsBlobStore = (dir: string): BlobStoreShape => {
  mkdirSync(dir, { recursive: true })
  const fileOf = (hash: string) => join(dir, hash.slice(2, 4), hash)

  const checkHash = (hash: string): Effect.Effect<void, BlobError> =>
    BLOB_HASH.test(hash)
      ? Effect.void
      : Effect.fail(new BlobError({ reason: "BadHash", hash, detail: "a blob hash is 0x + 64 lowercase hex digits" }))

  /** Moves a finished temp file into place (rename is atomic on one filesystem). */
  const commit = (tmp: string, hash: string) => {
    mkdirSync(join(dir, hash.slice(2, 4)), { recursive: true })
    renameSync(tmp, fileOf(hash))
  }
  const tmpName = () => join(dir, `.tmp-${randomBytes(8).toString("hex")}`)

  const put = (bytes: Uint8Array) =>
    Effect.suspend(() => {
      const hash = sha256Hex(bytes)
      if (existsSync(fileOf(hash))) return Effect.succeed<BlobInfo>({ hash, size: bytes.length })
      return Effect.try({
        try: () => {
          const tmp = tmpName()
          const fd = openSync(tmp, "w")
          try {
            writeSync(fd, bytes)
            fsyncSync(fd)
          } finally {
            closeSync(fd)
          }
          commit(tmp, hash)
          return { hash, size: bytes.length }
        },
        catch: io(hash)
      })
    })

  const putStream: BlobStoreShape["putStream"] = (chunks, expectedHash, sizeMax) =>
    checkHash(expectedHash).pipe(
      Effect.zipRight(
        Effect.acquireUseRelease(
          Effect.try({
            try: () => {
              const tmp = tmpName()
              return { tmp, fd: openSync(tmp, "w"), hasher: createHash("sha256"), size: 0, closed: false }
            },
            catch: io(expectedHash)
          }),
          (w) =>
            chunks.pipe(
              Stream.runForEach((chunk) =>
                Effect.suspend(() => {
                  w.size += chunk.length
                  if (w.size > sizeMax) {
                    return Effect.fail(
                      new BlobError({ reason: "TooLarge", hash: expectedHash, detail: `more than ${sizeMax} bytes` })
                    )
                  }
                  w.hasher.update(chunk)
                  return Effect.try({ try: () => void writeSync(w.fd, chunk), catch: io(expectedHash) })
                })
              ),
              Effect.flatMap(() =>
                Effect.suspend(() => {
                  const actual = `0x${w.hasher.digest("hex")}`
                  if (actual !== expectedHash) {
                    return Effect.fail(
                      new BlobError({ reason: "HashMismatch", hash: expectedHash, detail: `the bytes hash to ${actual}` })
                    )
                  }
                  return Effect.try({
                    try: () => {
                      fsyncSync(w.fd)
                      closeSync(w.fd)
                      w.closed = true
                      commit(w.tmp, expectedHash)
                      return { hash: expectedHash, size: w.size }
                    },
                    catch: io(expectedHash)
                  })
                })
              )
            ),
          (w) =>
            Effect.sync(() => {
              if (!w.closed) closeSync(w.fd)
              rmSync(w.tmp, { force: true })
            })
        )
      )
    )

  const get = (hash: string) =>
    checkHash(hash).pipe(
      Effect.zipRight(
        Effect.suspend(() => {
          const file = fileOf(hash)
          if (!existsSync(file)) return Effect.fail(new BlobError({ reason: "NotFound", hash, detail: "no such blob" }))
          return Effect.try({ try: () => readFileSync(file), catch: io(hash) }).pipe(
            Effect.filterOrFail(
              (bytes) => sha256Hex(bytes) === hash,
              () => new BlobError({ reason: "Corrupt", hash, detail: "the stored bytes no longer match their hash" })
            ),
            Effect.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
          )
        })
      )
    )

  const has = (hash: string) => checkHash(hash).pipe(Effect.map(() => existsSync(fileOf(hash))))

  const path = (hash: string) =>
    checkHash(hash).pipe(
      Effect.flatMap(() =>
        existsSync(fileOf(hash)) && statSync(fileOf(hash)).isFile()
          ? Effect.succeed(fileOf(hash))
          : Effect.fail(new BlobError({ reason: "NotFound", hash, detail: "no such blob" }))
      )
    )

  return { put, putStream, get, has, path }
}

export const FsBlobStore = {
  layer: (dir: string): Layer.Layer<BlobStore, BlobError> =>
    Layer.effect(BlobStore, Effect.try({ try: () => makeFsBlobStore(dir), catch: io("(store)") }))
}
