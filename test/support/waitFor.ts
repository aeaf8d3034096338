/** Polling with a deadline: a test waits for a condition, never for a length of time. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Poll `probe` until it returns a value other than undefined, or fail after `timeoutMs` saying what it waited for. */
export const waitFor = async <A>(
  what: string,
  probe: () => Promise<A | undefined>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number } = {}
): Promise<A> => {
  const timeoutMs = options.timeoutMs ?? 15_000
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(options.intervalMs ?? 50)
  }
}
