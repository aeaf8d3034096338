/**
 * `topai model upload`'s serving-bound flags become the manifest's
 * `maxShapes` and `inputBytesMax`; without them the manifest carries no
 * bound of its own (requests are then held to the smoke shapes).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import { manifestFromFlags } from "../../src/cli/commands/model.js"

const flags = {
  name: "vad",
  price: "10",
  version: "1",
  minGpu: "CPU",
  license: "MIT",
  description: "",
  shape: ["input=1,576", "state=2,1,128"],
  fixed: ["sr=16000"],
  validation: Option.none(),
  tolerance: Option.none()
}

describe("model upload flags", () => {
  it("--max-shape and --input-bytes-max go into the manifest", () => {
    const r = Either.getOrThrow(manifestFromFlags({ ...flags, maxShape: ["input=1,4096"], inputBytesMax: Option.some(20_000) }))
    expect(r.manifest.maxShapes).toEqual({ input: [1, 4096] })
    expect(r.manifest.inputBytesMax).toBe(20_000)
    expect(JSON.parse(r.text)).toMatchObject({ maxShapes: { input: [1, 4096] }, inputBytesMax: 20_000 })
  })
  it("without them: no max shapes, no byte bound", () => {
    const r = Either.getOrThrow(manifestFromFlags(flags))
    expect([r.manifest.maxShapes, r.manifest.inputBytesMax]).toEqual([{}, undefined])
  })
  it("a malformed --max-shape or a byte bound below 1 is refused", () => {
    expect(manifestFromFlags({ ...flags, maxShape: ["input=1,x"] })).toEqual(
      Either.left(`--max-shape takes NAME=D1,D2,... with dims ≥ 1 (for example --max-shape input=1,512), got "input=1,x"`)
    )
    const zero = manifestFromFlags({ ...flags, inputBytesMax: Option.some(0) })
    expect(Either.isLeft(zero) && zero.left.startsWith("bad manifest:")).toBe(true)
  })
})
