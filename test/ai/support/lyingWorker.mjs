// A sandbox child that claims success with a message that does not fit the protocol.
process.stdin.once("data", () => process.stdout.write(JSON.stringify({ event: "done", millis: 1, fingerprint: "not a hash", outputs: [], signature: {} }) + "\n"))
setInterval(() => undefined, 1000)
