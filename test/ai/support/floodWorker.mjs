// A sandbox child that answers with 2 MiB on one line, as a child made to print a huge output would.
process.stdin.once("data", () => process.stdout.write("x".repeat(2 * 1024 * 1024)))
setInterval(() => undefined, 1000)
