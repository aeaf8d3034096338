/** Polling with a deadline: a test waits for a condition, never for a length of time. */
import { Effect } from "effect"

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

/** The Effect twin of `waitFor`: until `check` gives a value (polling every 20 ms), or die after `ms` saying what never happened. */
export const eventually = <A, E, R>(what: string, check: Effect.Effect<A | undefined, E, R>, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    for (;;) {
      const a = yield* check
      if (a !== undefined) return a
      if (Date.now() > deadline) return yield* Effect.dieMessage(`never: ${what}`)
      yield* Effect.sleep("20 millis")
    }
  })
