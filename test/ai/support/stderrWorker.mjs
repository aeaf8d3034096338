// A sandbox child that prints what a crash prints (a path on the validator's machine, a stack) and exits.
process.stdin.once("data", () => {
  process.stderr.write("Error: cannot open /home/validator/.secret/models/abc.onnx\n    at load (/home/validator/topai/smokeWorker.mjs:12:3)\n")
  process.exit(3)
})
