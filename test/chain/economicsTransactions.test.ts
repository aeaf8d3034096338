/**
 * The economics on the ledger: the mining reserve and foundation fund in
 * genesis, and the governance and worker-stake transaction kinds — codecs
 * (round trip, strict decoding), admission and execution.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { precheckTransaction } from "../../domain/chain/admission.js"
import { eventJson, GenesisApplied, ShardEvent } from "../../domain/chain/events.js"
import { DEVNET_GOVERNANCE, GenesisConfig, genesisAllocations, genesisCommand, genesisSupply } from "../../domain/chain/genesis.js"
import { keccakHex } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { addressBytes, devKey, type PrivateKey } from "../../domain/chain/keys.js"
import { accountOf, Allocation, ApplyGenesis, balanceOf, genesisHash, makeLedger, nonceOf } from "../../domain/chain/ledger.js"
import { addTransaction, emptyMempool } from "../../domain/chain/mempool.js"
import { encodeRlp, type RlpInput } from "../../domain/chain/rlp.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { bondedBy } from "../../domain/chain/stakeBonds.js"
import {
  amountOf,
  decodeTransaction,
  signTransaction,
  TransactionBody,
  type TransactionPayload
} from "../../domain/chain/transaction.js"
import { FOUNDATION_ADDRESS, RESERVE_ADDRESS, STAKE_POOL_ADDRESS } from "../../domain/economics/accounts.js"
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
const POOL_SHARD = homeOf(STAKE_POOL_ADDRESS)
const OTHER_SHARD = ([1, 2] as Array<ShardId>).find((s) => s !== POOL_SHARD)!

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
  it("genesis allocates both, and the supply counts them", () => {
    const allocations = genesisAllocations(config)
    expect(allocations.find((a) => a.address === RESERVE_ADDRESS)?.amount).toBe(economics.miningReserve)
    expect(allocations.find((a) => a.address === FOUNDATION_ADDRESS)?.amount).toBe(economics.foundationFund)
    expect(genesisSupply(config)).toBe(BigInt(dev.length) * config.devBalance + economics.miningReserve + economics.foundationFund)
  })
  it("each lands on its home shard; the shards' funding is the whole supply", () => {
    const g1 = genesisState(1 as ShardId)
    const g2 = genesisState(2 as ShardId)
    const states = new Map([[1, g1.state], [2, g2.state]])
    expect(balanceOf(states.get(homeOf(RESERVE_ADDRESS))!, RESERVE_ADDRESS)).toBe(economics.miningReserve)
    expect(balanceOf(states.get(homeOf(FOUNDATION_ADDRESS))!, FOUNDATION_ADDRESS)).toBe(economics.foundationFund)
    expect(g1.state.totals.funded + g2.state.totals.funded).toBe(genesisSupply(config))
    expect(sumBalances(g1.state) + sumBalances(g2.state)).toBe(genesisSupply(config))
  })
  it("a zero reserve or fund is not allocated (an allocation is positive)", () => {
    const none = new GenesisConfig({
      ...config,
      economics: new EconomicsConfig({ ...config.economics, miningReserve: 0n, foundationFund: 0n })
    })
    expect(genesisAllocations(none).some((a) => a.address === RESERVE_ADDRESS || a.address === FOUNDATION_ADDRESS)).toBe(false)
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
    const home = homeOf(governor.address)
    const genesis = new ApplyGenesis({ ...legacy, allocations: [new Allocation({ address: governor.address, amount: 1_000n })] })
    const { state } = run(makeLedger(home), makeLedger(home).initialState, genesis)
    expect(state.chain).toMatchObject({ governance: null, epochBlocks: null })
    const refused = precheckTransaction(state, emptyMempool(), sign(governor.key, payloads[0]!))
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotGovernance")
  })
})

describe("gov.shard-shares", () => {
  const home = homeOf(governor.address)
  const g = genesisState(home)
  const outsider = accountsOn(home).find((d) => d.address !== governor.address)!
  const shares = payloads[0]!

  it("from the governance address: ShardSharesProposed, the fee charged", () => {
    const tx = sign(governor.key, shares)
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "ShardSharesProposed", "BlockExecuted"])
    expect(events[2]).toMatchObject({ _tag: "ShardSharesProposed", txHash: tx.hash, ai: 600_000n, beacon: 150_000n, transfer: 250_000n })
    expect(balanceOf(state, governor.address)).toBe(balanceOf(g.state, governor.address) - FEE)
    expect(nonceOf(state, governor.address)).toBe(1n)
  })

  it("from anyone else: rejected NotGovernance at execution, nothing charged, nonce unused", () => {
    const tx = sign(outsider.key, shares)
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tx]))
    expect(tags(events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(events[1]).toMatchObject({ txHash: tx.hash, sender: outsider.address, reason: "NotGovernance" })
    expect(accountOf(state, outsider.address)).toEqual(accountOf(g.state, outsider.address))
    expect(snapshot(state).totals).toEqual(snapshot(g.state).totals)
  })

  it("from anyone else: refused at admission; from governance: admitted", () => {
    const refused = precheckTransaction(g.state, emptyMempool(), sign(outsider.key, shares))
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotGovernance")
    expect(Either.isRight(precheckTransaction(g.state, emptyMempool(), sign(governor.key, shares)))).toBe(true)
  })
})

describe("worker.stake and worker.unbond", () => {
  const stakeFrom = (shard: ShardId) => {
    const g = genesisState(shard)
    const owner = accountsOn(shard)[0]!
    const tx = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: 4_000n })
    return { g, owner, tx, ...applyBlock(g.state, nextBlock(g.state, [tx])) }
  }

  it("on the stake pool's shard: StakeBonded and a transfer to the pool; conservation holds", () => {
    const { g, owner, tx, state, events } = stakeFrom(POOL_SHARD)
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "StakeBonded", "Transferred", "BlockExecuted"])
    expect(events[2]).toMatchObject({ txHash: tx.hash, owner: owner.address, worker: WORKER, amount: 4_000n })
    expect(events[3]).toMatchObject({ from: owner.address, to: STAKE_POOL_ADDRESS, amount: 4_000n })
    expect(balanceOf(state, owner.address)).toBe(balanceOf(g.state, owner.address) - 4_000n - FEE)
    expect(balanceOf(state, STAKE_POOL_ADDRESS)).toBe(4_000n)
    expect(sumBalances(state) + state.totals.burned).toBe(state.totals.funded)
  })

  it("from another shard: a receipt to the pool, credited once on the pool's shard; conservation across both", () => {
    const { g, owner, state, events } = stakeFrom(OTHER_SHARD)
    expect(tags(events)).toEqual(["BlockApplied", "FeeCharged", "StakeBonded", "CrossShardSent", "BlockExecuted"])
    const sent = events.find((e) => e._tag === "CrossShardSent")!
    if (sent._tag !== "CrossShardSent") throw new Error("no receipt")
    expect(sent).toMatchObject({ from: owner.address, to: STAKE_POOL_ADDRESS, amount: 4_000n, destShard: POOL_SHARD })
    expect(balanceOf(state, owner.address)).toBe(balanceOf(g.state, owner.address) - 4_000n - FEE)
    const pool = genesisState(POOL_SHARD)
    const credited = applyBlock(pool.state, nextBlock(pool.state, [], [sent.receipt, sent.receipt]))
    expect(balanceOf(credited.state, STAKE_POOL_ADDRESS)).toBe(4_000n)
    const held = sumBalances(state) + state.totals.burned + sumBalances(credited.state) + credited.state.totals.burned
    expect(held).toBe(genesisSupply(config))
  })

  it("a stake beyond the balance is rejected InsufficientBalance and moves nothing; admission counts pending stakes", () => {
    const g = genesisState(POOL_SHARD)
    const owner = accountsOn(POOL_SHARD)[0]!
    const balance = balanceOf(g.state, owner.address)
    const tooMuch = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance - FEE + 1n })
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [tooMuch]))
    expect(events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "InsufficientBalance" })
    expect(events.some((e) => e._tag === "StakeBonded")).toBe(false)
    expect(accountOf(state, owner.address)).toEqual(accountOf(g.state, owner.address))
    const half = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance / 2n })
    const pool = addTransaction(emptyMempool(), half)
    const next = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: balance / 2n }, 1n)
    const refused = precheckTransaction(g.state, pool, next)
    expect(Either.isLeft(refused) && refused.left.reason).toBe("InsufficientBalance")
  })

  it("worker.unbond records the request and moves nothing but the fee", () => {
    const g = genesisState(POOL_SHARD)
    const owner = accountsOn(POOL_SHARD)[0]!
    const stake = sign(owner.key, { kind: "worker.stake", worker: WORKER, amount: 4_000n })
    const unbond = sign(owner.key, { kind: "worker.unbond", worker: WORKER, amount: 1_500n }, 1n)
    const { state, events } = applyBlock(g.state, nextBlock(g.state, [stake, unbond]))
    expect(tags(events).slice(-3)).toEqual(["FeeCharged", "UnbondRequested", "BlockExecuted"])
    expect(events.find((e) => e._tag === "UnbondRequested")).toMatchObject({
      txHash: unbond.hash, owner: owner.address, worker: WORKER, amount: 1_500n
    })
    expect(balanceOf(state, STAKE_POOL_ADDRESS)).toBe(4_000n)
    expect(balanceOf(state, owner.address)).toBe(balanceOf(g.state, owner.address) - 4_000n - 2n * FEE)
  })

  it("an unbond of someone else's stake: refused NotStakeOwner at admission; in a block, rejected with nothing charged and nothing moved", () => {
    const g = genesisState(POOL_SHARD)
    const [owner, thief] = accountsOn(POOL_SHARD)
    const bonded = applyBlock(g.state, nextBlock(g.state, [sign(owner!.key, { kind: "worker.stake", worker: WORKER, amount: 4_000n })]))
    const theft = sign(thief!.key, { kind: "worker.unbond", worker: WORKER, amount: 4_000n })
    const refused = precheckTransaction(bonded.state, emptyMempool(), theft)
    expect(Either.isLeft(refused) && refused.left).toMatchObject({
      _tag: "AdmissionRejected",
      reason: "NotStakeOwner",
      txHash: theft.hash,
      detail: `${thief!.address} has no stake bonded to worker ${WORKER}; an account unbonds only its own bond`
    })
    const { state, events } = applyBlock(bonded.state, nextBlock(bonded.state, [theft]))
    expect(tags(events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(events[1]).toMatchObject({ txHash: theft.hash, sender: thief!.address, reason: "NotStakeOwner" })
    expect(accountOf(state, thief!.address)).toEqual(accountOf(bonded.state, thief!.address))
    expect(balanceOf(state, STAKE_POOL_ADDRESS)).toBe(4_000n)
    expect(snapshot(state).totals).toEqual(snapshot(bonded.state).totals)
    // The owner itself is admitted.
    const own = sign(owner!.key, { kind: "worker.unbond", worker: WORKER, amount: 4_000n }, 1n)
    expect(Either.isRight(precheckTransaction(bonded.state, emptyMempool(), own))).toBe(true)
  })

  it("an unbond over one's own bond (another owner's bond beside it does not count): UnbondOverBond at admission and in a block; each unbond lowers what is left to ask", () => {
    const g = genesisState(POOL_SHARD)
    const [owner, other] = accountsOn(POOL_SHARD)
    const bonded = applyBlock(
      g.state,
      nextBlock(g.state, [sign(owner!.key, { kind: "worker.stake", worker: WORKER, amount: 4_000n }), sign(other!.key, { kind: "worker.stake", worker: WORKER, amount: 1n })])
    )
    expect([bondedBy(bonded.state, owner!.address, WORKER), bondedBy(bonded.state, other!.address, WORKER)]).toEqual([4_000n, 1n])
    const over = sign(other!.key, { kind: "worker.unbond", worker: WORKER, amount: 4_000n }, 1n)
    const refused = precheckTransaction(bonded.state, emptyMempool(), over)
    expect(Either.isLeft(refused) && refused.left).toMatchObject({
      reason: "UnbondOverBond",
      detail: `${other!.address} has 1 bonded to worker ${WORKER} (before slashes); cannot unbond 4000: an account unbonds only its own bond`
    })
    const inBlock = applyBlock(bonded.state, nextBlock(bonded.state, [over]))
    expect(tags(inBlock.events)).toEqual(["BlockApplied", "TransactionRejected", "BlockExecuted"])
    expect(inBlock.events[1]).toMatchObject({ txHash: over.hash, reason: "UnbondOverBond" })
    expect(accountOf(inBlock.state, other!.address)).toEqual(accountOf(bonded.state, other!.address))
    // The owner asks back 3000 of its 4000: 1000 left to ask, 1001 is over it.
    const part = applyBlock(bonded.state, nextBlock(bonded.state, [sign(owner!.key, { kind: "worker.unbond", worker: WORKER, amount: 3_000n }, 1n)]))
    expect(tags(part.events)).toContain("UnbondRequested")
    expect(bondedBy(part.state, owner!.address, WORKER)).toBe(1_000n)
    const rest = precheckTransaction(part.state, emptyMempool(), sign(owner!.key, { kind: "worker.unbond", worker: WORKER, amount: 1_001n }, 2n))
    expect(Either.isLeft(rest) && rest.left.reason).toBe("UnbondOverBond")
    // All of it asked back: nothing left, and the next unbond is NotStakeOwner.
    const all = applyBlock(part.state, nextBlock(part.state, [sign(owner!.key, { kind: "worker.unbond", worker: WORKER, amount: 1_000n }, 2n)]))
    expect(bondedBy(all.state, owner!.address, WORKER)).toBe(0n)
    const none = precheckTransaction(all.state, emptyMempool(), sign(owner!.key, { kind: "worker.unbond", worker: WORKER, amount: 1n }, 3n))
    expect(Either.isLeft(none) && none.left.reason).toBe("NotStakeOwner")
  })

  it("an unbond of a worker nobody bonded to: NotStakeOwner", () => {
    const g = genesisState(POOL_SHARD)
    const refused = precheckTransaction(g.state, emptyMempool(), sign(governor.key, { kind: "worker.unbond", worker: WORKER, amount: 1n }))
    expect(Either.isLeft(refused) && refused.left.reason).toBe("NotStakeOwner")
  })

  it("replaying the events rebuilds the state", () => {
    const { g, state, events } = stakeFrom(POOL_SHARD)
    const ledger = makeLedger(POOL_SHARD)
    const replayed = [...g.events, ...events].reduce(ledger.evolve, ledger.initialState)
    expect(snapshot(replayed)).toEqual(snapshot(state))
  })
})

