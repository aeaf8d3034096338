/**
 * What the AI shard's genesis carries beyond the others': the economics its
 * ledger runs (fees, issuance, rewards, slashes), the GPU class table worker
 * units come from, and the chain's genesis supply (issuance's floor). They
 * are part of its genesis hash, so every member runs the same rules.
 */
import { Schema } from "effect"
import { EconomicsConfig } from "../economics/config.js"
import { GpuClassTable } from "../ai/worker/gpuClass.js"
import { Address } from "./keys.js"
import { Uint256 } from "./transaction.js"

export class AiGenesis extends Schema.Class<AiGenesis>("AiGenesis")({
  economics: EconomicsConfig,
  gpuClasses: GpuClassTable,
  totalSupply: Uint256,
  /** A single-producer chain's one attestor (the AI shard's producer); a BFT chain's AI committee attests instead. */
  attestor: Schema.optionalWith(Address, { exact: true })
}) {}

/** The bytes hashed into the AI shard's genesis hash: the schema encoding as compact JSON. */
export const aiGenesisJson = (g: AiGenesis): string => JSON.stringify(Schema.encodeSync(AiGenesis)(g))
