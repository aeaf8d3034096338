/** A compute node must bond a stake on every network but a dev devnet. */
import { describe, expect, it } from "vitest"
import fc from "fast-check"
import { workerStakeFloorProblem } from "../../domain/ai/worker/stakeFloor.js"

describe("the worker stake floor", () => {
  it("a chain without dev accounts needs a minimum stake above 0; a dev devnet may have none", () => {
    expect(workerStakeFloorProblem(0, 0n)).toMatch(/minWorkerStake above 0/)
    expect(workerStakeFloorProblem(0, 1n)).toBeUndefined()
    expect(workerStakeFloorProblem(10, 0n)).toBeUndefined()
  })

  it("refused exactly when there are no dev accounts and the floor is ≤ 0", () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.bigInt({ min: -10n, max: 10n ** 20n }), (devAccounts, stake) => {
        expect(workerStakeFloorProblem(devAccounts, stake) !== undefined).toBe(devAccounts === 0 && stake <= 0n)
      })
    )
  })
})
