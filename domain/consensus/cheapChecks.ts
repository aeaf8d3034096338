/**
 * What a node checks of a peer's consensus message before any pairing: the
 * sender is who the message says signed it, a proposal has its form, its
 * view's leader and its hash, a timeout names a high QC below its view and
 * is not a repeat: one this node already holds from that member for that
 * view, carrying nothing it lacks (a higher QC or a later TC; a member that
 * stays stuck re-sends its timeout with what it learnt since). A
 * message that fails costs no BLS work; one that passes goes on to its
 * certificates (the driver's precheck, then the state machine).
 */
import { leaderOf } from "./committee.js"
import type { ConsensusConfig, ConsensusState } from "./state.js"
import { hasValidShape, isView } from "./step.js"
import type { Message, NodeIndex, Timeout } from "./types.js"

/** Whether a timeout tells this node something: a higher QC than its own, or a later TC. */
const hasNews = (state: ConsensusState, t: Timeout): boolean =>
  t.highQc.view >= state.highQc.view || (t.lastTc !== undefined && (state.lastTc === undefined || t.lastTc.view >= state.lastTc.view))

export const CheapRefusal = ["SpoofedSender", "WrongLeader", "BadShape", "Duplicate"] as const
export type CheapRefusal = (typeof CheapRefusal)[number]

/** Why `message` from seat `from` is refused before any pairing, or undefined: go on. */
export const cheapRefusal = (config: ConsensusConfig, state: ConsensusState, from: NodeIndex, message: Message): CheapRefusal | undefined => {
  switch (message._tag) {
    case "Vote":
      return message.voter !== from ? "SpoofedSender" : undefined
    case "Timeout":
      if (message.voter !== from) return "SpoofedSender"
      if (!isView(message.view) || !isView(message.highQc.view) || message.highQc.view >= message.view) return "BadShape"
      return state.timeouts.get(message.view)?.has(from) === true && !hasNews(state, message) ? "Duplicate" : undefined
    case "Proposal": {
      const b = message.block
      if (b.proposer !== from) return "SpoofedSender"
      if (!isView(b.view) || b.proposer !== leaderOf(config.committee, b.view)) return "WrongLeader"
      return hasValidShape(config, b) ? undefined : "BadShape"
    }
    case "BlockRequest":
    case "BlockResponse":
      return undefined // certified blocks: the state machine checks each one's QC (known ones cost nothing)
  }
}
