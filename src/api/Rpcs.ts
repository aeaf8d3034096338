/** The whole RPC surface of a node: the chain's calls and the AI shard's, one group, one client. */
import { AiRpcs } from "./AiRpcs.js"
import { ChainRpcs } from "./NodeRpcs.js"

export class NodeRpcs extends ChainRpcs.merge(AiRpcs) {}
