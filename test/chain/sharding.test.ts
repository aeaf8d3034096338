import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { bytesToHex } from "../../domain/chain/hex.js"
import type { Address } from "../../domain/chain/keys.js"
import {
  FIRST_TRANSFER_SHARD,
  shardOf,
  shardOfTable,
  TABLE_COUNT,
  tableOf,
  tablesOfShard,
  TRANSFER_SHARDS_MAX
} from "../../domain/chain/sharding.js"

const shardCount = fc.integer({ min: 1, max: TRANSFER_SHARDS_MAX })
const tables = Array.from({ length: TABLE_COUNT }, (_, t) => t)

describe("tables and shards", () => {
  it("tableOf is the top 10 bits of the address", () => {
    expect(tableOf("0x0000000000000000000000000000000000000000" as Address)).toBe(0)
    expect(tableOf("0xffc0000000000000000000000000000000000000" as Address)).toBe(TABLE_COUNT - 1)
    expect(tableOf("0x0040000000000000000000000000000000000000" as Address)).toBe(1)
    expect(tableOf("0x003fffffffffffffffffffffffffffffffffffff" as Address)).toBe(0)
  })
  it("every table maps to exactly one transfer shard, in its shard's range", () => {
    fc.assert(fc.property(shardCount, (s) => {
      const misplaced = tables.filter((t) => {
        const shard = shardOfTable(t, s)
        if (shard < FIRST_TRANSFER_SHARD || shard >= FIRST_TRANSFER_SHARD + s) return true
        const { first, last } = tablesOfShard(shard, s)
        return t < first || t > last
      })
      expect(misplaced).toEqual([])
    }), { seed: 5, numRuns: 100 })
  })
  it("shards hold contiguous ranges that partition the tables, balanced within one table", () => {
    fc.assert(fc.property(shardCount, (s) => {
      const sizes: Array<number> = []
      let next = 0
      for (let k = 0; k < s; k++) {
        const { first, last } = tablesOfShard((FIRST_TRANSFER_SHARD + k) as never, s)
        expect(first).toBe(next)
        sizes.push(last - first + 1)
        next = last + 1
      }
      expect(next).toBe(TABLE_COUNT)
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1)
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1)
    }), { seed: 6, numRuns: 200 })
  })
  it("shardOf agrees with the table mapping for any address", () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), shardCount, (bytes, s) => {
      const a = bytesToHex(bytes) as Address
      expect(shardOf(a, s)).toBe(shardOfTable(tableOf(a), s))
    }), { seed: 8, numRuns: 300 })
  })
  it("rejects shard counts out of range (a config bug)", () => {
    expect(() => shardOfTable(0, 0)).toThrow(RangeError)
    expect(() => shardOfTable(0, TRANSFER_SHARDS_MAX + 1)).toThrow(RangeError)
  })
})
