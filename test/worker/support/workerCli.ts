/**
 * `topai worker …` for the tests, as src/cli/main.ts runs it (same runtime,
 * logger and error handling), without depending on main's other commands.
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, LogLevel } from "effect"
import { workerCommand } from "../../../src/cli/commands/worker.js"

const topai = Command.make("topai").pipe(Command.withSubcommands([workerCommand]))

Command.run(topai, { name: "topai", version: "test" })(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  Effect.provide(Logger.pretty),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
