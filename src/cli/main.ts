/** The `topai` command line. */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel } from "effect"
import { VERSION } from "../version.js"
import { auditCommand } from "./commands/audit.js"
import { escrowCommand } from "./commands/escrow.js"
import { govCommand } from "./commands/gov.js"
import { inferCommand, taskCommand } from "./commands/infer.js"
import { keyCommand } from "./commands/key.js"
import { MODEL_VERSION_OPTION, modelCommand } from "./commands/model.js"
import { nodeCommand } from "./commands/node.js"
import { devnetCommand } from "./commands/devnet.js"
import { balanceCommand, blockCommand, statusCommand } from "./commands/query.js"
import { rewardsCommand } from "./commands/rewards.js"
import { supplyCommand } from "./commands/supply.js"
import { transferCommand } from "./commands/transfer.js"
import { workerCommand } from "./commands/worker.js"
import { validatorCommand, validatorsCommand } from "./commands/validators.js"

const topai = Command.make("topai").pipe(
  Command.withDescription("TOP AI Network node and tools"),
  Command.withSubcommands([
    nodeCommand,
    devnetCommand,
    keyCommand,
    statusCommand,
    balanceCommand,
    transferCommand,
    blockCommand,
    modelCommand,
    escrowCommand,
    inferCommand,
    taskCommand,
    workerCommand,
    rewardsCommand,
    supplyCommand,
    govCommand,
    validatorCommand,
    validatorsCommand,
    auditCommand
  ])
)

const cli = Command.run(topai, { name: "topai", version: VERSION })

/**
 * `--version` anywhere is @effect/cli's built-in flag (it prints topai's
 * version), so `model upload ... --version V` names the model's version
 * `--model-version` before parsing.
 */
const argv = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (args[2] !== "model" || args[3] !== "upload") return args
  return args.map((a, i) => {
    if (a === "--version" && i + 1 < args.length) return `--${MODEL_VERSION_OPTION}`
    return a.startsWith("--version=") ? `--${MODEL_VERSION_OPTION}=${a.slice("--version=".length)}` : a
  })
}

cli(argv(process.argv)).pipe(
  Effect.provide(NodeContext.layer),
  Effect.provide(Logger.pretty),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
