/**
 * Event ids from what caused a command. A command built from a chain
 * transaction (or another deterministic cause) carries `cause`; its events get
 * ids `{cause}:{index}`, so handling the same cause twice — a projection
 * replaying after a crash — appends nothing new: the store refuses the ids.
 * Commands without a cause get the kernel's default ids.
 */
export interface Caused {
  readonly cause?: string | undefined
}

const CAUSE = Symbol.for("topai/cause")

/** Attach a cause to a command without changing its schema. */
export const withCause = <C extends object>(command: C, cause: string): C => {
  Object.defineProperty(command, CAUSE, { value: cause, enumerable: false })
  return command
}

export const causeOf = (command: object): string | undefined =>
  (command as { readonly [CAUSE]?: string })[CAUSE]

export const causedBy = (stream: string) => ({
  eventId: (command: object, index: number, revision: number): string => {
    const cause = causeOf(command)
    return cause === undefined ? `${stream}:${revision}` : `${cause}:${index}`
  },
  metadata: (command: object): Record<string, unknown> => {
    const cause = causeOf(command)
    return cause === undefined ? {} : { causation: cause }
  }
})
