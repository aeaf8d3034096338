// Stands in for a node that starts a smoke run and then dies: spawns the smoke
// worker on argv[2] (worker) / argv[3] (model), and prints the worker's pid
// once the model is loaded and running. The test then SIGKILLs this process.
import { spawn } from "node:child_process"

const [worker, modelPath] = process.argv.slice(2)
const child = spawn(process.execPath, [worker], { stdio: ["pipe", "pipe", "inherit"] })
const input = { type: "float32", dims: [1], dataBase64: Buffer.from(Float32Array.of(0).buffer).toString("base64") }
child.stdout.on("data", (d) => {
  if (d.toString().includes("loaded")) process.stdout.write(`${child.pid}\n`)
})
child.stdin.write(JSON.stringify({ modelPath, inputs: { x: input }, intraOpNumThreads: 1, outputBytesMax: 1000, deadlineMillis: 60_000 }) + "\n")
