/** The whole RPC surface of a node: the chain's calls, the AI shard's and the economy's, one group, one client. */
import { AiRpcs } from "./AiRpcs.js"
import { EconomyRpcs } from "./EconomyRpcs.js"
import { ChainRpcs } from "./NodeRpcs.js"
import { RefusedRpcs, RequestLimits } from "./requestLimits.js"

/** Every method may answer `RequestRefused` (too large, too many streams): see requestLimits.ts. */
export class NodeRpcs extends ChainRpcs.merge(AiRpcs, EconomyRpcs, RefusedRpcs).middleware(RequestLimits) {}
