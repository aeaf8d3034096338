/** The whole RPC surface of a node: the chain's calls, the AI shard's and the economy's, one group, one client. */
import { AiRpcs } from "./AiRpcs.js"
import { EconomyRpcs } from "./EconomyRpcs.js"
import { ChainRpcs } from "./NodeRpcs.js"

export class NodeRpcs extends ChainRpcs.merge(AiRpcs, EconomyRpcs) {}
