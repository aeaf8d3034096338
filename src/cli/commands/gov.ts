/**
 * `topai gov set-shard-shares --ai PPM --beacon PPM --transfer PPM --key HEX`:
 * governance's split of each epoch's issuance between shard kinds, in effect
 * from the epoch after the one its block lands in. Only the chain's
 * governance key may send it (dev account 0 on the devnet); the chain says
 * NotGovernance to anyone else.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { PPM } from "../../../domain/economics/config.js"
import { json, rpcUrl } from "../options.js"
import { printResult, reportErrors } from "../output.js"
import { BadInput } from "../parse.js"
import { aiFeeOption, keyOption, loadKey, parseFee, submitSigned, withNode } from "./aiSupport.js"

const PPM_TEXT = /^[0-9][0-9_]*$/
/** Up to four decimals: 0.0001 % is 1 ppm. */
const PERCENT_TEXT = /^([0-9]+)(?:\.([0-9]{1,4}))?%$/

/** Parts per million, or a percentage with up to four decimals (`50%`, `12.5%`). */
export const parsePpm = (text: string, what: string): Effect.Effect<bigint, BadInput> => {
  const t = text.trim()
  const pct = PERCENT_TEXT.exec(t)
  let value: bigint | undefined
  if (pct !== null) value = BigInt(pct[1]!) * 10_000n + BigInt((pct[2] ?? "").padEnd(4, "0"))
  else if (PPM_TEXT.test(t)) value = BigInt(t.replaceAll("_", ""))
  if (value === undefined) {
    return Effect.fail(new BadInput(`${what} must be parts per million (0 to ${PPM}) or a percentage like 50% or 12.5%, got "${text}"`))
  }
  return value > PPM ? Effect.fail(new BadInput(`${what} must be at most ${PPM} ppm (100%), got "${text}"`)) : Effect.succeed(value)
}

const share = (name: string, kind: string) =>
  Options.text(name).pipe(Options.withDescription(`The ${kind} share of each epoch's issuance: ppm (e.g. 500000) or percent (e.g. 50%)`))

const pctText = (ppm: bigint) => `${ppm / 10_000n}${ppm % 10_000n === 0n ? "" : `.${String(ppm % 10_000n).padStart(4, "0").replace(/0+$/, "")}`}%`

const setShardShares = Command.make(
  "set-shard-shares",
  {
    ai: share("ai", "AI shard's"),
    beacon: share("beacon", "beacon's"),
    transfer: share("transfer", "transfer shards'"),
    key: keyOption("The governance account"),
    fee: aiFeeOption,
    rpcUrl,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const ai = yield* parsePpm(o.ai, "--ai")
      const beacon = yield* parsePpm(o.beacon, "--beacon")
      const transfer = yield* parsePpm(o.transfer, "--transfer")
      const sum = ai + beacon + transfer
      if (sum !== PPM) {
        return yield* Effect.fail(
          new BadInput(`the shares must sum to ${PPM} ppm (100%), got ${ai} + ${beacon} + ${transfer} = ${sum} ppm (${pctText(sum)})`)
        )
      }
      const key = yield* loadKey(o.key)
      const fee = yield* parseFee(o.fee)
      return yield* withNode(o.rpcUrl, (client) =>
        Effect.gen(function* () {
          const tx = yield* submitSigned(client, key, { kind: "gov.shard-shares", ai, beacon, transfer }, fee)
          const supply = yield* client.supply()
          return {
            tx: tx.hash,
            block: `${tx.shard}/${tx.blockHeight ?? "?"}`,
            accepted: true,
            shares: { ai, beacon, transfer },
            /** The open epoch when the block landed: the shares apply from the next one. */
            openEpoch: supply.epoch,
            effectiveFromEpoch: supply.epoch + 1
          }
        })
      )
    }).pipe(
      Effect.flatMap((r) =>
        printResult(
          o.json,
          r,
          (r) =>
            `gov.shard-shares ${r.tx} accepted in block ${r.block}: ai ${pctText(r.shares.ai)}, beacon ${pctText(r.shares.beacon)}, transfer ${pctText(r.shares.transfer)}\n` +
            `  in effect from epoch ${r.effectiveFromEpoch} (epoch ${r.openEpoch} is open)`
        )
      ),
      reportErrors(o.json)
    )
).pipe(
  Command.withDescription(
    "Governance: set how each epoch's issuance is split between the AI, beacon and transfer shards (must sum to 1000000 ppm = 100%); signed with the governance key, waits for the block"
  )
)

export const govCommand = Command.make("gov").pipe(
  Command.withDescription("Governance transactions (signed by the chain's governance key)"),
  Command.withSubcommands([setShardShares])
)
