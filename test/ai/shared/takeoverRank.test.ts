/** takeoverRank: for any committee and task, the members' ranks are 0 … n − 1, each once; a non-member's is 0. */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import type { Hash32 } from "../../../domain/chain/hash.js"
import type { Address } from "../../../domain/chain/keys.js"
import { takeoverRank } from "../../../domain/ai/shared/takeoverRank.js"

const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString("hex")}` as Address)
const taskId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `0x${Buffer.from(b).toString("hex")}` as Hash32)

describe("takeoverRank", () => {
  it("gives the members of a committee each a distinct turn from 0 to n − 1, whatever the task", () => {
    fc.assert(
      fc.property(fc.uniqueArray(address, { minLength: 1, maxLength: 12 }), taskId, (members, task) => {
        const ranks = members.map((m) => takeoverRank(members, m, task)).sort((a, b) => a - b)
        expect(ranks).toEqual(members.map((_, i) => i))
      })
    )
  })
  it("does not depend on the order the committee is listed in; a non-member has rank 0", () => {
    fc.assert(
      fc.property(fc.uniqueArray(address, { minLength: 2, maxLength: 12 }), address, taskId, (members, outsider, task) => {
        const reversed = [...members].reverse()
        for (const m of members) expect(takeoverRank(reversed, m, task)).toBe(takeoverRank(members, m, task))
        if (!members.includes(outsider)) expect(takeoverRank(members, outsider, task)).toBe(0)
      })
    )
  })
  it("starts different tasks with different members", () => {
    const members = ["0x" + "01".repeat(20), "0x" + "02".repeat(20), "0x" + "03".repeat(20), "0x" + "04".repeat(20)] as Array<Address>
    const firsts = new Set<Address>()
    for (let i = 0; i < 4; i++) {
      const task = `0x${i.toString(16).padStart(8, "0")}${"00".repeat(28)}` as Hash32
      firsts.add(members.find((m) => takeoverRank(members, m, task) === 0)!)
    }
    expect(firsts.size).toBe(4)
  })
})
