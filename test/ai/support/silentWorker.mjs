// A sandbox child that never answers (a load stuck in native code looks like this).
process.stdin.resume()
setInterval(() => undefined, 1000)
