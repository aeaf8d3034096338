/**
 * The AI ledger's context on the AI shard: the block's place and time, who
 * attests (a BFT chain's AI committee by stake; a single-producer chain's
 * genesis attestor alone) and the genesis rules. Block execution builds it
 * for the block it runs; admission for the next block, to refuse at the door
 * what the ledger would refuse (execution still decides).
 */
import type { AiContext } from "../ai/ledger/context.js"
import type { LedgerState } from "./ledgerState.js"

export const aiContextOf = (s: LedgerState, height: number, timestamp: number): AiContext | null => {
  const chain = s.chain
  if (chain?.ai == null) return null
  const { economics, totalSupply, gpuClasses, attestor } = chain.ai
  return {
    chainId: chain.chainId,
    shard: chain.shard,
    transferShards: chain.transferShards,
    height,
    timestamp,
    committee:
      s.committee !== null
        ? s.committee.members.map((m) => ({ address: m.address, stake: m.stake }))
        : attestor === undefined
          ? []
          : [{ address: attestor, stake: 1n }],
    economics,
    totalSupply,
    gpuClasses
  }
}
