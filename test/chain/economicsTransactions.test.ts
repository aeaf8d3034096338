/**
 * The economics on the ledger: the mining reserve and foundation fund in
 * genesis, and the governance and worker-stake transaction kinds — codecs
 * (round trip, strict decoding), admission and execution.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { precheckTransaction } from "../../domain/chain/admission.js"
import { eventJson, GenesisApplied, ShardEvent, type CrossShardSent } from "../../domain/chain/events.js"
import { allocationsOfShard, DEVNET_GOVERNANCE, GenesisConfig, genesisAllocations, genesisCommand, genesisSupply, type DevAccount } from "../../domain/chain/genesis.js"
import { keccakHex } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { addressBytes, devKey, type PrivateKey } from "../../domain/chain/keys.js"
import { accountOf, ApplyGenesis, balanceOf, genesisHash, makeLedger, type LedgerState } from "../../domain/chain/ledger.js"
import { addTransaction, emptyMempool } from "../../domain/chain/mempool.js"
import { encodeRlp, type RlpInput } from "../../domain/chain/rlp.js"
import { aiShardOf, type ShardId } from "../../domain/chain/sharding.js"
import {
  amountOf,
  decodeTransaction,
  signTransaction,
  TransactionBody,
  type TransactionPayload
} from "../../domain/chain/transaction.js"
import { isSystemAddress, SYSTEM_FOUNDATION, SYSTEM_RESERVE, SYSTEM_STAKE_POOL } from "../../domain/economics/accounts.js"
import { bondOf } from "../../domain/economics/bonds.js"
import { defaultEconomics, EconomicsConfig } from "../../domain/economics/config.js"
import {
  accountsOn,
  applyBlock,
  CHAIN_ID,
  config,
  dev,
  FEE,
  genesisState,
  homeOf,
  nextBlock,
  run,
  snapshot,
  sumBalances,
  tags
} from "./helpers.js"

const sign = (key: PrivateKey, payload: TransactionPayload, nonce = 0n, fee = FEE) =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce, fee, payload }), key)

const governor = dev[0]!
const WORKER = devKey(900).publicKey.address
const AI = aiShardOf(config.transferShards)

const payloads: ReadonlyArray<TransactionPayload> = [
  { kind: "gov.shard-shares", ai: 600_000n, beacon: 150_000n, transfer: 250_000n },
  { kind: "gov.shard-shares", ai: 1_000_000n, beacon: 0n, transfer: 0n },
  { kind: "worker.stake", worker: WORKER, amount: 1n },
  { kind: "worker.stake", worker: WORKER, amount: (1n << 256n) - 1n },
  { kind: "worker.unbond", worker: WORKER, amount: 12_345n }
]

/** A signed transaction's RLP with `kind` and `payload` replaced (decoding never reaches the signature). */
const withPayload = (kind: string, payload: RlpInput): Uint8Array => {
  const tx = sign(governor.key, payloads[0]!)
  return encodeRlp([tx.body.chainId, tx.body.nonce, tx.body.fee, utf8(kind), payload, tx.publicKey.bytes, tx.signature])
}

const decodeDetail = (bytes: Uint8Array): string => {
  const r = decodeTransaction(bytes)
  return Either.isRight(r) ? "decoded" : r.left._tag === "MalformedTransaction" ? r.left.detail : r.left._tag
}

const worker20 = addressBytes(WORKER)

describe("economics transaction kinds: codecs", () => {
  it.each(payloads.map((p) => [p.kind, p] as const))("%s round-trips through its canonical RLP", (_kind, payload) => {
    const tx = sign(governor.key, payload)
    const decoded = Either.getOrThrow(decodeTransaction(tx.encoded))
    expect(decoded.hash).toBe(tx.hash)
    expect(decoded.body.payload).toEqual(payload)
    expect(decoded.body.kind).toBe(payload.kind)
  })

  it.each<[string, () => Uint8Array, string]>([
    ["shares summing to 999999", () => withPayload("gov.shard-shares", [500_000n, 250_000n, 249_999n]), "must sum to 1000000 ppm, got 999999"],
    ["shares summing to 1000001", () => withPayload("gov.shard-shares", [500_000n, 250_000n, 250_001n]), "must sum to 1000000 ppm, got 1000001"],
    ["a share over 10^6", () => withPayload("gov.shard-shares", [1_000_001n, 0n, 0n]), "gov.shard-shares.ai must be at most 1000000 ppm"],
    ["all shares zero", () => withPayload("gov.shard-shares", [0n, 0n, 0n]), "must sum to 1000000 ppm, got 0"],
    ["two shares", () => withPayload("gov.shard-shares", [500_000n, 500_000n]), "gov.shard-shares payload must be a list of 3"],
    ["four shares", () => withPayload("gov.shard-shares", [500_000n, 500_000n, 0n, 0n]), "must be a list of 3"],
    ["a share with a leading zero", () => withPayload("gov.shard-shares", [Uint8Array.of(0, 1), 999_999n, 0n]), "leading zero"],
    ["a share as a list", () => withPayload("gov.shard-shares", [[], 1_000_000n, 0n]), "must be an integer"],
    ["shares not a list", () => withPayload("gov.shard-shares", Uint8Array.of(1)), "must be a list of 3"],
    ["a stake of 0", () => withPayload("worker.stake", [worker20, 0n]), "worker.stake.amount must be positive"],
    ["a stake for a 19-byte worker", () => withPayload("worker.stake", [worker20.subarray(1), 5n]), "worker.stake.worker must be 20 bytes"],
    ["a stake for a 21-byte worker", () => withPayload("worker.stake", [Uint8Array.of(0, ...worker20), 5n]), "worker.stake.worker must be 20 bytes"],
    ["a stake over 256 bits", () => withPayload("worker.stake", [worker20, new Uint8Array(33).fill(1)]), "has 33 bytes"],
    ["a stake without an amount", () => withPayload("worker.stake", [worker20]), "worker.stake payload must be a list of 2"],
    ["a stake with a non-canonical amount", () => withPayload("worker.stake", [worker20, Uint8Array.of(0, 5)]), "leading zero"],
    ["an unbond of 0", () => withPayload("worker.unbond", [worker20, 0n]), "worker.unbond.amount must be positive"],
    ["an unbond with the worker as a list", () => withPayload("worker.unbond", [[worker20], 5n]), "worker.unbond.worker must be 20 bytes"],
    ["an unbond with three fields", () => withPayload("worker.unbond", [worker20, 5n, 5n]), "worker.unbond payload must be a list of 2"],
    ["an unknown governance kind", () => withPayload("gov.mint", [1n]), 'unknown kind "gov.mint"']
  ])("rejects %s", (_, make, detail) => {
    expect(decodeDetail(make())).toContain(detail)
  })

  it("a body whose shares do not sum to 10^6 cannot be built", () => {
    expect(() => new TransactionBody({
      chainId: CHAIN_ID, nonce: 0n, fee: 0n, payload: { kind: "gov.shard-shares", ai: 1n, beacon: 1n, transfer: 1n }
    })).toThrow(/sum to 1000000/)
  })

  it("a stake counts in what the sender spends; an unbond and a governance proposal do not", () => {
    expect(amountOf({ kind: "worker.stake", worker: WORKER, amount: 77n })).toBe(77n)
    expect(amountOf({ kind: "worker.unbond", worker: WORKER, amount: 77n })).toBe(0n)
    expect(amountOf(payloads[0]!)).toBe(0n)
    expect(sign(governor.key, { kind: "worker.stake", worker: WORKER, amount: 77n }).spend).toBe(77n + FEE)
  })
})

describe("genesis: the mining reserve and the foundation fund", () => {
  const economics = config.economics
  it("the devnet's economics are the defaults with dev account 0 as governance", () => {
    expect(DEVNET_GOVERNANCE).toBe(devKey(0).publicKey.address)
    expect(economics).toEqual(defaultEconomics(DEVNET_GOVERNANCE))
  })
  it("genesis allocates both to keyless system accounts, and the supply counts them", () => {
    const allocations = genesisAllocations(config)
    expect(allocations.find((a) => a.address === SYSTEM_RESERVE)?.amount).toBe(economics.miningReserve)
    expect(allocations.find((a) => a.address === SYSTEM_FOUNDATION)?.amount).toBe(economics.foundationFund)
    expect(isSystemAddress(SYSTEM_RESERVE) && isSystemAddress(SYSTEM_FOUNDATION)).toBe(true)
    expect(genesisSupply(config)).toBe(BigInt(dev.length) * config.devBalance + economics.miningReserve + economics.foundationFund)
  })
  it("both land on the AI shard (no transfer shard holds them); the shards' funding is the whole supply", () => {
    const g1 = genesisState(1 as ShardId)
    const g2 = genesisState(2 as ShardId)
    const ai = genesisState(AI)
    expect(allocationsOfShard(config, AI).map((a) => a.address)).toEqual([SYSTEM_RESERVE, SYSTEM_FOUNDATION])
    expect(balanceOf(ai.state, SYSTEM_RESERVE)).toBe(economics.miningReserve)
    expect(balanceOf(ai.state, SYSTEM_FOUNDATION)).toBe(economics.foundationFund)
    for (const g of [g1, g2]) expect(balanceOf(g.state, SYSTEM_RESERVE) + balanceOf(g.state, SYSTEM_FOUNDATION)).toBe(0n)
    expect(g1.state.totals.funded + g2.state.totals.funded + ai.state.totals.funded).toBe(genesisSupply(config))
    expect(sumBalances(g1.state) + sumBalances(g2.state) + sumBalances(ai.state)).toBe(genesisSupply(config))
  })
  it("a zero reserve or fund is not allocated (an allocation is positive)", () => {
    const none = new GenesisConfig({
      ...config,
      economics: new EconomicsConfig({ ...config.economics, miningReserve: 0n, foundationFund: 0n })
    })
    expect(genesisAllocations(none).some((a) => a.address === SYSTEM_RESERVE || a.address === SYSTEM_FOUNDATION)).toBe(false)
    expect(allocationsOfShard(none, AI)).toEqual([])
    expect(genesisSupply(none)).toBe(BigInt(dev.length) * config.devBalance)
  })
  it("a genesis file without economics gets the devnet's; economics round-trip through the file's JSON", () => {
    const json = Schema.encodeSync(Schema.parseJson(GenesisConfig))(config)
    const withoutEconomics = JSON.stringify({ ...JSON.parse(json), economics: undefined })
    const decoded = Schema.decodeUnknownSync(Schema.parseJson(GenesisConfig))(withoutEconomics)
    expect(decoded.economics).toEqual(defaultEconomics(DEVNET_GOVERNANCE))
    expect(Schema.decodeUnknownSync(Schema.parseJson(GenesisConfig))(json)).toEqual(config)
  })
  it("the governance address is in every shard's chain context", () => {
    for (const shard of [1, 2] as Array<ShardId>) {
      expect(genesisCommand(config, shard).governance).toBe(DEVNET_GOVERNANCE)
      expect(genesisState(shard).state.chain?.governance).toBe(DEVNET_GOVERNANCE)
    }
  })
})

describe("older stores", () => {
  const legacy = new ApplyGenesis({ chainId: CHAIN_ID, transferShards: 2, timestamp: 5, allocations: [] })
  it("a genesis without governance or epochBlocks hashes as before", () => {
    expect(genesisHash(1 as ShardId, legacy)).toBe(keccakHex(encodeRlp([CHAIN_ID, 1n, 2n, 5n, []])))
    expect(genesisHash(1 as ShardId, new ApplyGenesis({ ...legacy, governance: DEVNET_GOVERNANCE }))).not.toBe(
      genesisHash(1 as ShardId, legacy)
    )
  })
  it("a GenesisApplied stored without governance decodes, re-encodes to the same JSON, and leaves no governance", () => {
    // As the schema before the economics encoded it (the tag comes last).
    const stored = {
      chainId: "7777", shard: 1, transferShards: 2, timestamp: 5, genesisHash: genesisHash(1 as ShardId, legacy),
      _tag: "GenesisApplied"
    }
    const event = Schema.decodeUnknownSync(ShardEvent)(stored)
    expect(event).toBeInstanceOf(GenesisApplied)
    expect(eventJson(event)).toBe(JSON.stringify(stored))
  })
  it("a chain whose genesis named no governance refuses every governance transaction", () => {
    // gov.shard-shares runs on the AI shard: an AI-shard genesis with no governance named.
    const genesis = new ApplyGenesis({ ...legacy, kind: "ai", ai: genesisCommand(config, AI).ai! })
    const { state } = run(makeLedger(AI), makeLedger(AI).initialState, genesis)
    expect(state.chain).toMatchObject({ governance: null, epochBlocks: null })
    const tx = sign(governor.key, payloads[0]!, 0n, 0n)
    const refused = precheckTransaction(state, emptyMempool(), tx)
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotGovernance")
    const { events } = applyBlock(state, nextBlock(state, [tx]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "NotGovernance" })
  })
})

describe("gov.shard-shares (on the AI shard)", () => {
  const g = genesisState(AI)
  const outsider = dev.find((d) => d.address !== governor.address)!
  const shares = payloads[0]!

  it("from the governance address: fee 0, the nonce counted on the AI shard, AiShardSharesSet, the economy's pending shares", () => {
    const tx = sign(governor.key, shares, 0n, 0n)
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "AiShardSharesSet", "BlockExecuted"])
    expect(events[2]).toMatchObject({ _tag: "AiShardSharesSet", txHash: tx.hash, ai: 600_000n, beacon: 150_000n, transfer: 250_000n })
    expect(accountOf(state, governor.address)).toMatchObject({ balance: 0n, nonce: 1n })
    expect(state.ai!.economy.pendingShares).toEqual({ ai: 600_000n, beacon: 150_000n, transfer: 250_000n })
  })

  it("from anyone else: rejected NotGovernance at execution, nothing charged, nonce unused", () => {
    const tx = sign(outsider.key, shares, 0n, 0n)
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(events[1]).toMatchObject({ txHash: tx.hash, sender: outsider.address, reason: "NotGovernance" })
    expect(accountOf(state, outsider.address)).toEqual(accountOf(g.state, outsider.address))
    expect(snapshot(state).totals).toEqual(snapshot(g.state).totals)
    expect(state.ai!.economy.pendingShares).toEqual(g.state.ai!.economy.pendingShares)
  })

  it("from anyone else: refused at admission; from governance: admitted; on a transfer shard: WrongShard", () => {
    const refused = precheckTransaction(g.state, emptyMempool(), sign(outsider.key, shares, 0n, 0n))
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotGovernance")
    expect(Either.isRight(precheckTransaction(g.state, emptyMempool(), sign(governor.key, shares, 0n, 0n)))).toBe(true)
    const home = genesisState(homeOf(governor.address)).state
    const wrong = precheckTransaction(home, emptyMempool(), sign(governor.key, shares))
    expect(Either.isLeft(wrong) && wrong.left.reason).toBe("WrongShard")
  })
})

describe("worker.stake (a transfer shard) and worker.unbond (the AI shard)", () => {
  const S1 = 1 as ShardId
  /** owner's worker.stake on its transfer shard: the state there, its events and the bond receipt it sent. */
  const stakeFrom = (owner: DevAccount, amount = 4_000n) => {
    const g = genesisState(homeOf(owner.address))
    const tx = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount })
    const r = applyBlock(g.state, nextBlock(g.state, [tx]))
    const sent = r.events.find((e): e is CrossShardSent => e._tag === "CrossShardSent")
    return { g, tx, ...r, sent: sent! }
  }
  /** The AI shard after the bond receipts of these stakes, relayed in one block. */
  const bondedOnAi = (stakes: ReadonlyArray<readonly [DevAccount, bigint]>) => {
    const g = genesisState(AI)
    return applyBlock(g.state, nextBlock(g.state, [], stakes.map(([owner, amount]) => stakeFrom(owner, amount).sent.receipt)))
  }
  const unbond = (who: DevAccount, amount: bigint, nonce = 0n) => sign(who.key, { kind: "worker.unbond", worker: WORKER, amount }, nonce, 0n)
  const bondOnAi = (state: LedgerState, owner: DevAccount) => bondOf(state.ai!.economy, WORKER, owner.address)
  const [owner, thief] = accountsOn(S1) as [DevAccount, DevAccount]

  it("worker.stake sends a bond receipt to the AI shard's stake pool; no transfer, no bond on the transfer shard", () => {
    const { g, tx, state, events, sent } = stakeFrom(owner)
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "CrossShardSent", "BlockExecuted"])
    expect(sent).toMatchObject({
      sourceShard: S1,
      destShard: AI,
      from: owner.address,
      to: SYSTEM_STAKE_POOL,
      amount: 4_000n,
      txHash: tx.hash,
      purpose: { kind: "bond", worker: WORKER }
    })
    expect(balanceOf(state, owner.address)).toBe(balanceOf(g.state, owner.address) - 4_000n - FEE)
    expect(state.ai).toBeNull() // bonds are the AI shard's ledger's; a transfer shard keeps none
    expect(sumBalances(state) + state.totals.burned + state.totals.sentOut).toBe(state.totals.funded)
  })

  it("the bond receipt is credited once on the AI shard (relayed twice): AiStakeBonded (owner, worker), the pool's balance, conservation across both shards", () => {
    const { state, sent } = stakeFrom(owner)
    const ai = genesisState(AI)
    const credited = applyBlock(ai.state, nextBlock(ai.state, [], [sent.receipt, sent.receipt]))
    expect(credited.events.filter((e) => e._tag === "AiStakeBonded")).toEqual([
      expect.objectContaining({ receiptId: sent.receiptId, worker: WORKER, owner: owner.address, amount: 4_000n })
    ])
    expect(balanceOf(credited.state, SYSTEM_STAKE_POOL)).toBe(4_000n)
    expect(bondOnAi(credited.state, owner)).toBe(4_000n)
    const again = applyBlock(credited.state, nextBlock(credited.state, [], [sent.receipt]))
    expect(again.events.some((e) => e._tag === "AiStakeBonded" || e._tag === "CrossShardReceived")).toBe(false)
    const held = sumBalances(state) + state.totals.burned + sumBalances(again.state) + again.state.totals.burned
    expect(held).toBe(state.totals.funded + ai.state.totals.funded)
  })

  it("a stake beyond the balance is rejected InsufficientBalance and moves nothing; admission counts pending stakes", () => {
    const g = genesisState(S1)
    const balance = balanceOf(g.state, owner.address)
    const tooMuch = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance - FEE + 1n })
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tooMuch]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "InsufficientBalance" })
    expect(events.some((e) => e._tag === "CrossShardSent")).toBe(false)
    expect(accountOf(state, owner.address)).toEqual(accountOf(g.state, owner.address))
    const half = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance / 2n })
    const pool = addTransaction(emptyMempool(), half)
    const next = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance / 2n }, 1n)
    const refused = precheckTransaction(g.state, pool, next)
    expect(Either.isLeft(refused) && refused.left.reason).toBe("InsufficientBalance")
  })

  it("worker.unbond runs on the AI shard (fee 0): AiUnbondRequested, nothing moves; on a transfer shard it is WrongShard", () => {
    const bonded = bondedOnAi([[owner, 4_000n]])
    const tx = unbond(owner, 1_500n)
    expect(Either.isRight(precheckTransaction(bonded.state, emptyMempool(), tx))).toBe(true)
    const { state, events } = applyBlock(bonded.state, nextBlock(bonded.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "AiUnbondRequested", "BlockExecuted"])
    expect(events[2]).toMatchObject({ txHash: tx.hash, owner: owner.address, worker: WORKER, amount: 1_500n })
    expect(balanceOf(state, SYSTEM_STAKE_POOL)).toBe(4_000n)
    expect(accountOf(state, owner.address)).toMatchObject({ balance: 0n, nonce: 1n })
    expect(bondOnAi(state, owner)).toBe(2_500n)
    const transfer = genesisState(S1).state
    const wrong = precheckTransaction(transfer, emptyMempool(), tx)
    expect(Either.isLeft(wrong) && wrong.left.reason).toBe("WrongShard")
    const inBlock = applyBlock(transfer, nextBlock(transfer, [tx]))
    expect(inBlock.events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "WrongShard" })
  })

  it("an unbond of someone else's stake: refused NotStakeOwner at admission; in a block, rejected by the AI ledger with nothing charged and nothing moved; the owner's own is admitted", () => {
    const bonded = bondedOnAi([[owner, 4_000n]])
    const theft = unbond(thief, 4_000n)
    const refused = precheckTransaction(bonded.state, emptyMempool(), theft)
    expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "AdmissionRejected", reason: "NotStakeOwner", txHash: theft.hash })
    const { state, events } = applyBlock(bonded.state, nextBlock(bonded.state, [theft]))
    expect(tags(events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(events[1]).toMatchObject({
      txHash: theft.hash,
      sender: thief.address,
      reason: "NotStakeOwner",
      detail: `${thief.address} has no stake bonded to worker ${WORKER}; an account unbonds only its own bond`
    })
    expect(accountOf(state, thief.address)).toEqual(accountOf(bonded.state, thief.address))
    expect(balanceOf(state, SYSTEM_STAKE_POOL)).toBe(4_000n)
    expect(bondOnAi(state, owner)).toBe(4_000n)
    expect(snapshot(state).totals).toEqual(snapshot(bonded.state).totals)
    // The owner itself is admitted (its bond is the AI ledger's, not a transfer shard's).
    expect(Either.isRight(precheckTransaction(bonded.state, emptyMempool(), unbond(owner, 4_000n)))).toBe(true)
  })

  it("an unbond over one's own bond (another owner's bond beside it does not count): UnbondOverBond at admission and in a block; each unbond lowers what is left to ask", () => {
    const other = thief
    const bonded = bondedOnAi([[owner, 4_000n], [other, 1n]])
    expect([bondOnAi(bonded.state, owner), bondOnAi(bonded.state, other)]).toEqual([4_000n, 1n])
    const over = unbond(other, 4_000n)
    const refused = precheckTransaction(bonded.state, emptyMempool(), over)
    expect(Either.isLeft(refused) && refused.left.reason).toBe("UnbondOverBond")
    const inBlock = applyBlock(bonded.state, nextBlock(bonded.state, [over]))
    expect(tags(inBlock.events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(inBlock.events[1]).toMatchObject({ txHash: over.hash, reason: "UnbondOverBond" })
    expect(accountOf(inBlock.state, other.address)).toEqual(accountOf(bonded.state, other.address))
    // The owner asks back 3000 of its 4000: 1000 left to ask, 1001 is over it.
    const part = applyBlock(bonded.state, nextBlock(bonded.state, [unbond(owner, 3_000n)]))
    expect(tags(part.events)).toContain("AiUnbondRequested")
    expect(bondOnAi(part.state, owner)).toBe(1_000n)
    const rest = precheckTransaction(part.state, emptyMempool(), unbond(owner, 1_001n, 1n))
    expect(Either.isLeft(rest) && rest.left.reason).toBe("UnbondOverBond")
    const restInBlock = applyBlock(part.state, nextBlock(part.state, [unbond(owner, 1_001n, 1n)]))
    expect(restInBlock.events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "UnbondOverBond" })
    // All of it asked back: nothing left, and the next unbond is NotStakeOwner.
    const all = applyBlock(part.state, nextBlock(part.state, [unbond(owner, 1_000n, 1n)]))
    expect(bondOnAi(all.state, owner)).toBe(0n)
    const none = precheckTransaction(all.state, emptyMempool(), unbond(owner, 1n, 2n))
    expect(Either.isLeft(none) && none.left.reason).toBe("NotStakeOwner")
  })

  it("an unbond of a worker nobody bonded to: NotStakeOwner at admission and in a block", () => {
    const g = genesisState(AI)
    const tx = unbond(governor, 1n)
    const refused = precheckTransaction(g.state, emptyMempool(), tx)
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotStakeOwner")
    const { events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "NotStakeOwner" })
  })

  it("replaying the events rebuilds the state, the AI ledger's bonds included", () => {
    const g = genesisState(AI)
    const bonded = applyBlock(g.state, nextBlock(g.state, [], [stakeFrom(owner).sent.receipt]))
    const unbonded = applyBlock(bonded.state, nextBlock(bonded.state, [unbond(owner, 1_000n)]))
    const ledger = makeLedger(AI)
    const replayed = [...g.events, ...bonded.events, ...unbonded.events].reduce(ledger.evolve, ledger.initialState)
    expect(snapshot(replayed)).toEqual(snapshot(unbonded.state))
    expect(bondOnAi(replayed, owner)).toBe(3_000n)
    expect(replayed.ai!.economy.unbonding).toEqual(unbonded.state.ai!.economy.unbonding)
  })
})
