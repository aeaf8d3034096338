// Stands in for a node that starts a smoke run and then dies: spawns the smoke
// worker on argv[2] (worker) / argv[3] (model), and prints the worker's pid
// once the model is loaded and running. The test then SIGKILLs this process.
import { spawn } from "node:child_process"

const [worker, modelPath] = process.argv.slice(2)
const child = spawn(process.execPath, [worker], { stdio: ["pipe", "pipe", "inherit"] })
child.stdout.on("data", (d) => {
  if (d.toString().includes("loaded")) process.stdout.write(`${child.pid}\n`)
})
const request = {
  modelPath,
  modelHash: "0x00",
  manifest: { shapes: {}, fixedInputs: {}, outputTolerance: 1e-4 },
  staticLimits: { modelBytesMax: 1 << 20, irVersionMin: 3, irVersionMax: 12, opsetMin: 7, opsetMax: 24, tensorElementsMax: 1 << 20 },
  intraOpNumThreads: 1,
  outputBytesMax: 1000,
  deadlineMillis: 60_000
}
child.stdin.write(JSON.stringify(request) + "\n")
