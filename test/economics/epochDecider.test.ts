import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { fold } from "../../domain/Decider.js"
import { closeEpoch } from "../../domain/economics/closeEpoch.js"
import { CloseEpoch, epochDecider } from "../../domain/economics/epochDecider.js"
import { rewardEpochStreamId } from "../../domain/economics/events.js"
import { EconomyFact } from "../../domain/economics/facts.js"
import { address, hash, ledgerJson, Sim, testConfig, throughJson, window } from "./support.js"

const config = testConfig()
const economy = () =>
  new Sim(config).facts(
    EconomyFact.WorkerJoined({ worker: address("w"), owner: address("o"), gpuUnitsMilli: 1_000n, at: 0 }),
    EconomyFact.StakeBonded({ txHash: hash("b"), worker: address("w"), owner: address("o"), amount: 1_000n }),
    EconomyFact.ModelVerified({ modelId: hash("m"), provider: address("p"), at: 5 }),
    EconomyFact.TaskSettled({ taskId: hash("t"), modelId: hash("m"), provider: address("p"), developer: address("d"), price: 500n, workers: [{ worker: address("w"), execMs: 700 }], at: 9 }),
    EconomyFact.ResultProvenWrong({ taskId: hash("t"), worker: address("w"), developer: address("d"), reporter: address("r"), at: 10 })
  ).state
const close = (epoch: number, over: Partial<ConstructorParameters<typeof CloseEpoch>[0]> = {}) =>
  new CloseEpoch({ epoch, window: window(epoch), economy: economy(), config, ...over })

describe("the reward epoch decider", () => {
  it("closes once: the ledger, then nothing on a repeated close", () => {
    expect(rewardEpochStreamId(0)).toBe("reward-epoch-0")
    const first = Either.getOrThrow(epochDecider.decide(epochDecider.initialState, close(0)))
    expect(first.map((e) => e._tag)).toEqual(["RewardCredited", "RewardCredited", "RewardCredited", "RewardCredited", "RewardCredited", "Slashed", "FeesRecorded", "FeesRecorded", "EpochClosed"])
    const after = fold(epochDecider.evolve, epochDecider.initialState, first)
    expect([after.closed, after.epoch]).toEqual([true, 0])
    expect(epochDecider.decide(after, close(0))).toEqual(Either.right([]))
  })
  it.each([
    ["another epoch than the stream's", 1, {}, "WrongEpoch"],
    ["a window of another epoch", 0, { window: window(3) }, "WindowMismatch"],
    ["an economy standing at another epoch", 1, {}, "EconomyElsewhere"]
  ] as const)("rejects %s", (_, epoch, over, reason) => {
    const streamOf0 = reason === "WrongEpoch" ? fold(epochDecider.evolve, epochDecider.initialState, closeEpoch(config, economy(), window(0))) : epochDecider.initialState
    const r = epochDecider.decide(streamOf0, close(epoch, over))
    expect(Either.isLeft(r) && [r.left._tag, r.left.reason]).toEqual(["EpochRejected", reason])
  })
  it("is deterministic to the byte and survives its JSON encoding", () => {
    const a = closeEpoch(config, economy(), window(0))
    const b = closeEpoch(config, economy(), window(0))
    expect(ledgerJson(a)).toBe(ledgerJson(b))
    expect(throughJson(a)).toEqual(a)
    expect(ledgerJson(a)).toContain('"amount":"') // bigints as strings
  })
})
