/**
 * The last events of a run, kept cheaply (objects in a ring) and formatted
 * only when a seed fails: what each node received, sent, timed out on and
 * committed just before the violation.
 */
import type { Message, Output } from "../../domain/consensus/types.js"

export interface TraceEntry {
  readonly timeMs: number
  readonly node: string
  readonly what: string
  readonly message?: Message | undefined
  readonly output?: Output | undefined
}

export class TraceRing {
  private readonly ring: Array<TraceEntry | undefined>
  private next = 0
  private count = 0

  constructor(readonly depth: number) {
    this.ring = new Array<TraceEntry | undefined>(depth)
  }

  push(entry: TraceEntry): void {
    if (this.depth === 0) return
    this.ring[this.next] = entry
    this.next = (this.next + 1) % this.depth
    this.count++
  }

  lines(): ReadonlyArray<string> {
    const n = Math.min(this.count, this.depth)
    const out: Array<string> = []
    for (let i = 0; i < n; i++) {
      const entry = this.ring[(this.next - n + i + this.depth) % this.depth]!
      out.push(formatEntry(entry))
    }
    return out
  }
}

const short = (hash: string): string => hash.slice(2, 10)

export const formatMessage = (m: Message): string => {
  switch (m._tag) {
    case "Proposal":
      return (
        `Proposal v${m.block.view} h${m.block.height} ${short(m.block.hash)} parent ${short(m.block.parentHash)}` +
        ` justify v${m.block.justify.view}${m.tc === undefined ? "" : ` tc v${m.tc.view}`} txs ${m.block.payload.length}`
      )
    case "Vote":
      return `Vote v${m.view} ${short(m.blockHash)} by ${m.voter}`
    case "Timeout":
      return `Timeout v${m.view} by ${m.voter} highQc v${m.highQc.view}${m.lastTc === undefined ? "" : ` lastTc v${m.lastTc.view}`}`
    case "BlockRequest":
      return `BlockRequest ${short(m.blockHash)}`
    case "BlockResponse":
      return `BlockResponse [${m.blocks.map((b) => `h${b.height} ${short(b.hash)}`).join(", ")}]`
  }
}

export const formatOutput = (o: Output): string => {
  switch (o._tag) {
    case "Persist": {
      const r = o.record
      if (r._tag === "Committed") return `persist Committed h${r.block.height} ${short(r.block.hash)}`
      if (r._tag === "Locked") return `persist Locked qc v${r.qc.view} ${short(r.qc.blockHash)}`
      if (r._tag === "Voted") return `persist Voted v${r.view} ${short(r.blockHash)}`
      return `persist TimedOut v${r.view}`
    }
    case "Send":
      return `send → ${o.to}: ${formatMessage(o.message)}`
    case "Broadcast":
      return `broadcast: ${formatMessage(o.message)}`
    case "SetTimer":
      return `timer v${o.view} in ${o.durationMs}ms`
    case "Commit":
      return `COMMIT h${o.block.height} v${o.block.view} ${short(o.block.hash)} txs ${o.block.payload.length}`
    case "RequestBlock":
      return `request block ${short(o.blockHash)} from ${o.from}`
  }
}

const formatEntry = (e: TraceEntry): string => {
  const detail =
    e.message !== undefined ? formatMessage(e.message) : e.output !== undefined ? formatOutput(e.output) : ""
  return `${String(e.timeMs).padStart(7)}ms ${e.node.padEnd(10)} ${e.what}${detail === "" ? "" : ` ${detail}`}`
}
