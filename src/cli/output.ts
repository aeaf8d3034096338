/**
 * How commands print: readable text by default, one JSON document with
 * `--json`. Failures print their typed error's message (or the error as
 * JSON) on stderr and end the process with exit code 1 — never a stack trace.
 */
import { Cause, Console, Effect, Schema } from "effect"

/** A failure already reported to the user; main turns it into exit code 1. */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  message: Schema.String
}) {}

/** JSON.stringify that writes bigints as decimal strings. */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v), 2)

export const printResult = <A>(json: boolean, value: A, text: (value: A) => string) =>
  Console.log(json ? toJson(value) : text(value))

const describe = (error: unknown): { readonly tag: string; readonly message: string } => {
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : "Error"
    const message = "message" in error && typeof error.message === "string" && error.message !== "" ? error.message : String(error)
    return { tag, message }
  }
  return { tag: "Error", message: String(error) }
}

/**
 * A bug, not a user error: one line for the user (no stack trace); the whole
 * cause, with stacks, on stderr too when TOPAI_DEBUG is set.
 */
const describeDefect = (cause: Cause.Cause<unknown>): { readonly tag: string; readonly message: string } => {
  if (process.env["TOPAI_DEBUG"] !== undefined) console.error(Cause.pretty(cause))
  const squashed = Cause.squash(cause)
  const text = squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
  const firstLine = text.split("\n")[0] ?? text
  return { tag: "Defect", message: `internal error (${firstLine}); run again with TOPAI_DEBUG=1 for details` }
}

/** Report any typed failure of a command and turn it into CommandFailed. */
export const reportErrors =
  (json: boolean) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, CommandFailed, R> =>
    self.pipe(
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
        const failure = Cause.failureOption(cause)
        const { tag, message } = failure._tag === "Some" ? describe(failure.value) : describeDefect(cause)
        return (json ? Console.error(toJson({ error: tag, message })) : Console.error(`error: ${message}`)).pipe(
          Effect.zipRight(Effect.fail(new CommandFailed({ message })))
        )
      })
    )
