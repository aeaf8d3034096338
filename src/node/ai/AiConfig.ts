/** The AI shard's settings on a node, with the devnet's defaults. */
import type { Duration } from "effect"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { DEFAULT_GPU_CLASSES } from "../../../domain/ai/worker/gpuClass.js"
import type { GpuClassTable } from "../../../domain/ai/worker/gpuClass.js"
import type { RunDeadlineRules } from "../../../domain/ai/runDeadline.js"
import type { VerifyConfig } from "../../../infra/inference/verifyModel.js"

export interface AiConfig {
  /** This node's validator key. */
  readonly validatorKey: PrivateKey
  /**
   * Signs this node's `model.attest` transactions (its verdict on uploaded
   * weights): a BFT validator's account key (a member of the AI shard's
   * committee); the AI shard's proposer key on a single-producer chain.
   */
  readonly attestorKey: PrivateKey
  /**
   * Signs this gateway's `usage.settle` transactions (any account may send
   * them, fee 0: the node's AI-shard account, the same key that attests).
   */
  readonly settlerKey: PrivateKey
  readonly gpuClasses: GpuClassTable
  /** A worker silent for longer is marked offline. */
  readonly heartbeatGraceMs: number
  readonly stakeMin: bigint
  /** Unused since the AI ledger decides models: a model still Pending ATTEST_DEADLINE_BLOCKS after its registration is rejected on chain. */
  readonly verificationTimeoutMs: number
  /** How long one worker may take for one task before it is replaced. */
  readonly workerDeadlineMs: number
  /** Reassignments before a task fails. */
  readonly retriesMax: number
  /** How often the usage receipts of validated tasks are sent to the AI ledger (`usage.settle`). */
  readonly settleEvery: Duration.DurationInput
  /**
   * How long a receipt another gateway shared waits for that gateway to
   * settle it before this member submits it (default SHARE_GRACE_MS, 20 s).
   */
  readonly shareGraceMs?: number | undefined
  /** The largest model file accepted. */
  readonly modelBytesMax: number
  readonly verify?: Partial<VerifyConfig> | undefined
  /** The per-run deadline from a model's verified cost (default DEFAULT_RUN_DEADLINE_RULES). */
  readonly runDeadline?: RunDeadlineRules | undefined
  /**
   * Other nodes' RPC URLs: a registered model whose weights this node does not
   * hold (they were uploaded to another node) is fetched from them by hash
   * (`fetchWeightsFrom`), then verified as an upload is. None: only uploads.
   */
  readonly peers?: ReadonlyArray<string> | undefined
  /** Back-off between rounds over the peers while no peer has the weights (default 500 ms doubling to 10 s). */
  readonly peerFetch?: { readonly retryInitial?: Duration.DurationInput | undefined; readonly retryMax?: Duration.DurationInput | undefined } | undefined
}

/**
 * What the AI shard asks the economy: a worker's bonded stake (registration
 * needs `stakeMin` of it) and whether a model is paused (its price stopped
 * covering the compute fee). Without an economy, the declared stake counts
 * and nothing is paused.
 */
export interface AiEconomy {
  readonly bondedOf: (worker: string) => bigint
  readonly isPaused: (model: string) => boolean
}


export const DEFAULT_AI_SETTINGS = {
  gpuClasses: DEFAULT_GPU_CLASSES,
  heartbeatGraceMs: 15_000,
  stakeMin: 0n,
  verificationTimeoutMs: 10 * 60_000,
  workerDeadlineMs: 30_000,
  retriesMax: 3,
  settleEvery: "2 seconds",
  modelBytesMax: 256 * 1024 * 1024
} as const
