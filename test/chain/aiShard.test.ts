/**
 * The AI shard as a shard of the chain (issue 12, the chain plumbing): its
 * id and kind, its genesis (a kind marker hashed only on it, so the other
 * shards' genesis hashes are unchanged), and its ledger state.
 */
import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { allShardIds, GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { Allocation, ApplyGenesis, genesisHash, makeLedger } from "../../domain/chain/ledger.js"
import { aiShardOf, isAiShard, SHARD_ID_MAX, shardKindOf, ShardId, TRANSFER_SHARDS_MAX } from "../../domain/chain/sharding.js"
import { Schema } from "effect"
import { SYSTEM_FOUNDATION, SYSTEM_RESERVE } from "../../domain/economics/accounts.js"
import { accountsOn, config, genesisState, tags } from "./helpers.js"

const AI = aiShardOf(config.transferShards)

describe("the AI shard's id and kind", () => {
  it("is the shard after the last transfer shard, for every shard count", () => {
    for (const s of [1, 2, 3, 7, TRANSFER_SHARDS_MAX]) {
      expect(aiShardOf(s)).toBe(s + 1)
      expect(isAiShard(s + 1, s)).toBe(true)
      expect(isAiShard(s, s)).toBe(false)
      expect(shardKindOf(0, s)).toBe("beacon")
      expect(shardKindOf(1, s)).toBe("transfer")
      expect(shardKindOf(s, s)).toBe("transfer")
      expect(shardKindOf(s + 1, s)).toBe("ai")
      expect(() => shardKindOf(s + 2, s)).toThrow(RangeError)
    }
  })
  it("ShardId admits the largest chain's AI shard and nothing beyond", () => {
    expect(SHARD_ID_MAX).toBe(TRANSFER_SHARDS_MAX + 1)
    expect(Either.isRight(Schema.decodeUnknownEither(ShardId)(aiShardOf(TRANSFER_SHARDS_MAX)))).toBe(true)
    expect(Either.isLeft(Schema.decodeUnknownEither(ShardId)(SHARD_ID_MAX + 1))).toBe(true)
  })
})

describe("the AI shard's genesis", () => {
  it("is the last of the chain's shards, its kind and rules, holding the system accounts only (the reserve, the foundation fund)", () => {
    expect(allShardIds(config)).toEqual([0, 1, 2, AI])
    const cmd = genesisCommand(config, AI)
    expect(cmd.kind).toBe("ai")
    expect(cmd.ai?.economics).toEqual(config.economics)
    expect(cmd.allocations.map((a) => [a.address, a.amount])).toEqual([
      [SYSTEM_RESERVE, config.economics.miningReserve],
      [SYSTEM_FOUNDATION, config.economics.foundationFund]
    ])
    expect(cmd.epochBlocks).toBeUndefined()
    for (const shard of allShardIds(config).filter((s) => s !== AI)) expect(genesisCommand(config, shard).kind).toBeUndefined()
  })
  it("applies on the AI shard: the ledger knows its kind", () => {
    const { state, events } = genesisState(AI)
    expect(tags(events)).toEqual(["GenesisApplied", "AccountFunded", "AccountFunded", "BlockExecuted"])
    expect(events[0]).toMatchObject({ shard: AI, kind: "ai" })
    expect(state.chain?.kind).toBe("ai")
    expect(state.ai).not.toBeNull()
    expect(state.totals.funded).toBe(config.economics.miningReserve + config.economics.foundationFund)
    expect(genesisState(1 as ShardId).state.ai).toBeNull()
    expect(genesisState(0 as ShardId).state.chain?.kind).toBe("beacon")
    expect(genesisState(1 as ShardId).state.chain?.kind).toBe("transfer")
  })
  it("hashes its kind, and only its own: the other shards' genesis hashes are as without it", () => {
    const cmd = genesisCommand(config, AI)
    const { kind: _, ...unmarked } = cmd
    expect(genesisHash(AI, cmd)).not.toBe(genesisHash(AI, new ApplyGenesis(unmarked)))
    // A transfer shard's genesis is exactly the command it always was (no kind field at all).
    expect(Object.keys(genesisCommand(config, 1 as ShardId))).not.toContain("kind")
  })
  it.each<[string, ShardId, ApplyGenesis, string]>([
    ["an AI genesis on a transfer shard", 1 as ShardId, genesisCommand(config, AI), "NotTheAiShard"],
    ["an AI genesis on the beacon", 0 as ShardId, genesisCommand(config, AI), "NotTheAiShard"],
    ["a transfer-shard genesis on the AI shard", AI, genesisCommand(config, 1 as ShardId), "NotATransferShard"],
    [
      "an AI genesis with accounts",
      AI,
      new ApplyGenesis({ ...genesisCommand(config, AI), allocations: [new Allocation({ address: accountsOn(1 as ShardId)[0]!.address, amount: 1n })] }),
      "AccountOfAnotherShard"
    ]
  ])("refuses %s", (_, shard, cmd, reason) => {
    const r = makeLedger(shard).decide(makeLedger(shard).initialState, cmd)
    expect(Either.isLeft(r) && r.left.reason).toBe(reason)
  })
  it("a chain of one transfer shard has its AI shard at 2", () => {
    const one = new GenesisConfig({ ...config, transferShards: 1 })
    expect(allShardIds(one)).toEqual([0, 1, 2])
    expect(genesisCommand(one, 2 as ShardId).kind).toBe("ai")
  })
})
