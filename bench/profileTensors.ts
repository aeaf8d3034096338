/**
 * For profiling (not in `npm run bench`): the MLP of bench/tensors.ts
 * through the devnet, one request at a time, then a CPU profile's view of
 * where a request's time goes:
 *
 *   node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/profileTensors.ts [COUNT]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { devKey } from "../domain/chain/keys.js"
import { inferArgs, serve, startDevnet } from "./inference.js"
import { floatInput, mlpModel, PRICE } from "./tensors.js"

const count = Number(process.argv[2] ?? 40)
const dir = mkdtempSync(join(tmpdir(), "topai-profile-tensors-"))
const d = await startDevnet(dir)
try {
  const manifest = { version: "1", minGpuClass: "CPU", license: "MIT", description: "profile", validation: { kind: "single", sampleRatePerMillion: 0 }, name: "mlp", pricePerCall: PRICE.toString() } as const
  const session = await serve(d, mlpModel(), manifest, devKey(1), devKey(4), PRICE * 1_000n)
  const inputs = floatInput("x", [256, 512])
  const ms: Array<number> = []
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await d.call(d.client.infer(inferArgs(session, inputs)))
    ms.push(performance.now() - t)
  }
  ms.sort((a, b) => a - b)
  console.log(`${count} requests, p50 ${ms[Math.floor(count / 2)]!.toFixed(1)} ms`)
} finally {
  await d.close()
  rmSync(dir, { recursive: true, force: true })
}
