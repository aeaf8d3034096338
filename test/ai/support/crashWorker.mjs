// A sandbox child that dies the way a native crash in onnxruntime would.
process.stdin.once("data", () => process.kill(process.pid, "SIGSEGV"))
