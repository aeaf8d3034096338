/**
 * The AI shard on the chain ledger alone (no node, no I/O): the keyless
 * system accounts refuse every sender that claims them, and a whole AI round
 * goes through real blocks of real shards — an escrow deposit and a worker
 * stake on transfer shards, their purpose receipts on the AI shard, a model
 * registered and verified by the single producer, a worker registered, a
 * task settled from a signed grant and a signed result, its payouts sent as
 * receipts and credited on the payees' transfer shards, then the epoch closed
 * by the beacon's receipt and its rewards paid the same way — with balances exact
 * to the unit and conservation across every shard.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, HashSet } from "effect"
import fc from "fast-check"
import { precheckTransaction } from "../../domain/chain/admission.js"
import type { CrossShardSent, ShardEvent } from "../../domain/chain/events.js"
import { genesisCommand, GenesisConfig, genesisSupply } from "../../domain/chain/genesis.js"
import { keccakHex, type Hash32 } from "../../domain/chain/hash.js"
import { utf8 } from "../../domain/chain/hex.js"
import { devKeyFromSeed, devProposerKey, PrivateKey, type Address } from "../../domain/chain/keys.js"
import { balanceOf, makeLedger, type LedgerState } from "../../domain/chain/ledger.js"
import { CrossShardReceipt, receiptIdOf } from "../../domain/chain/receipt.js"
import { BEACON_SYSTEM_ADDRESS, epochEndCause } from "../../domain/chain/epochReceipt.js"
import { epochCloseCause } from "../../domain/ai/ledger/epochClose.js"
import { aiShardOf, BEACON_SHARD, type ShardId } from "../../domain/chain/sharding.js"
import { signTransaction, Transaction, TransactionBody, type TransactionPayload, type UsageReceipt } from "../../domain/chain/transaction.js"
import { checkTransaction } from "../../domain/chain/txRules.js"
import { emptyMempool } from "../../domain/chain/mempool.js"
import {
  BURN_ADDRESS,
  isSystemAddress,
  SYSTEM_BEACON,
  SYSTEM_ESCROW,
  SYSTEM_FOUNDATION,
  SYSTEM_RESERVE,
  SYSTEM_STAKE_POOL,
  SYSTEM_TREASURY,
  systemAddress
} from "../../domain/economics/accounts.js"
import { taskFees } from "../../domain/economics/fees.js"
import { bondOf } from "../../domain/economics/bonds.js"
import { resultDigest, sessionGrantDigest, signMessage, taskIdOf, taskRequestDigest } from "../../domain/ai/signedMessages.js"
import { escrowOf, modelOf, workerOf } from "../../domain/ai/ledger/state.js"
import { TOKEN } from "../../domain/economics/config.js"
import { applyBlock, CHAIN_ID, config, dev, FEE, genesisState, homeOf, nextBlock, run, SHARDS, snapshot, sumBalances, tags } from "./helpers.js"

const AI = aiShardOf(config.transferShards)
const LEDGER_SHARDS: ReadonlyArray<ShardId> = [BEACON_SHARD as ShardId, ...SHARDS, AI]
const SYSTEM = [SYSTEM_RESERVE, SYSTEM_FOUNDATION, SYSTEM_STAKE_POOL, SYSTEM_TREASURY, SYSTEM_ESCROW, SYSTEM_BEACON]

const sign = (key: PrivateKey, payload: TransactionPayload, nonce: bigint, fee: bigint): Transaction =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce, fee, payload }), key)

/**
 * A transaction as a forged signature would make it look: every field of a
 * real signed one, but the sender the ledger reads is `sender`. (The real
 * sender is recovered from the public key, so no key makes this; the ledger
 * does not re-check signatures, so its own rules must refuse it.)
 */
const forgedFrom = (sender: Address, tx: Transaction): Transaction => Object.create(tx, { sender: { value: sender } }) as Transaction


/** The beacon's receipt that closes epoch 0 on the AI shard (window from the round's genesis to `endAt`). */
const epochZeroReceipt = (endAt: number): CrossShardReceipt => {
  const cause = epochEndCause(0)
  return new CrossShardReceipt({
    receiptId: receiptIdOf(cause),
    sourceShard: BEACON_SHARD as ShardId,
    destShard: AI,
    from: BEACON_SYSTEM_ADDRESS,
    to: BEACON_SYSTEM_ADDRESS,
    amount: 0n,
    txHash: cause,
    purpose: { kind: "epoch", epoch: 0, startAt: ROUND.timestamp, endAt }
  })
}

describe("keyless system accounts as senders", () => {
  it("each is the last 20 bytes of keccak256(\"topai/system/\" + name); none is a dev account, a proposer or the burn address", () => {
    const names = ["reserve", "foundation", "stake-pool", "treasury", "escrow", "beacon"]
    expect(names.map(systemAddress)).toEqual(SYSTEM)
    for (const a of SYSTEM) {
      expect(isSystemAddress(a)).toBe(true)
      expect(isSystemAddress(a.toUpperCase().replace("0X", "0x") as Address)).toBe(true)
    }
    const keyed = [...dev.map((d) => d.address), ...LEDGER_SHARDS.map((s) => devProposerKey(s).publicKey.address), BURN_ADDRESS]
    expect(keyed.filter(isSystemAddress)).toEqual([])
  })

  it("no key makes one: the sender recovered from any key (random, or seeded with the system names) is not a system address", () => {
    for (const name of ["reserve", "foundation", "stake-pool", "treasury", "escrow", "beacon"]) {
      for (const seed of [name, `topai/system/${name}`, `topai-${name}`]) expect(isSystemAddress(devKeyFromSeed(seed).publicKey.address)).toBe(false)
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const key = PrivateKey.fromBytes(bytes)
        fc.pre(Either.isRight(key))
        const tx = sign(Either.getOrThrow(key), { kind: "transfer", to: SYSTEM_RESERVE, amount: 1n }, 0n, 0n)
        expect(isSystemAddress(tx.sender)).toBe(false)
        expect(SYSTEM).not.toContain(tx.sender)
      }),
      { numRuns: 200 }
    )
  })

  it("checkTransaction refuses a system sender first, with SystemAccount, whatever the kind, the shard, the nonce or the balance", () => {
    const real = sign(dev[0]!.key, { kind: "transfer", to: dev[1]!.address, amount: 1n }, 0n, FEE)
    for (const shard of LEDGER_SHARDS) {
      const chain = genesisState(shard).state.chain!
      for (const system of SYSTEM) {
        const r = checkTransaction(chain, { nextNonce: 0n, spendable: 10n ** 30n }, forgedFrom(system, real))
        expect(Either.isLeft(r) && r.left).toEqual({ reason: "SystemAccount", detail: `${system} is a system account: no key spends from it` })
      }
    }
    // The very same transaction from its real sender passes the checks on its shard.
    const home = genesisState(homeOf(dev[0]!.address)).state
    expect(Either.isRight(checkTransaction(home.chain!, { nextNonce: 0n, spendable: DEV_SPENDABLE }, real))).toBe(true)
  })

  it("admission refuses it SystemAccount; in a block it is rejected and nothing moves — not the reserve's money, not the escrow's, not a nonce", () => {
    // Fund the AI shard's escrow first, so there is system money there to steal.
    const developer = dev.find((d) => homeOf(d.address) === SHARDS[0])!
    const t = genesisState(SHARDS[0]!).state
    const deposit = applyBlock(t, nextBlock(t, [sign(developer.key, { kind: "escrow.deposit", model: MODEL_X, amount: 900n }, 0n, FEE)]))
    const receipt = deposit.events.find((e): e is CrossShardSent => e._tag === "CrossShardSent")!.receipt
    const g = genesisState(AI).state
    const funded = applyBlock(g, nextBlock(g, [], [receipt])).state
    expect(balanceOf(funded, SYSTEM_ESCROW)).toBe(900n)
    const thief = dev[3]!
    const forged = [
      forgedFrom(SYSTEM_RESERVE, sign(thief.key, { kind: "transfer", to: thief.address, amount: 1_000n }, 0n, 0n)),
      forgedFrom(SYSTEM_ESCROW, sign(thief.key, { kind: "escrow.withdraw", model: MODEL_X, amount: 900n }, 0n, 0n)),
      forgedFrom(SYSTEM_FOUNDATION, sign(thief.key, { kind: "model.register", weightsHash: MODEL_X, sizeBytes: 1n, manifest: manifestAt(1n) }, 0n, 0n)),
      forgedFrom(SYSTEM_STAKE_POOL, sign(thief.key, { kind: "worker.unbond", worker: thief.address, amount: 1n }, 0n, 0n))
    ]
    for (const tx of forged) {
      const refused = precheckTransaction(funded, emptyMempool(), tx)
      expect(Either.isLeft(refused) && refused.left.reason).toBe("SystemAccount")
    }
    const { state, events } = applyBlock(funded, nextBlock(funded, forged))
    expect(tags(events)).toEqual(["BlockApplied", ...forged.map(() => "TransactionRejected"), "BlockExecuted"])
    expect(events.filter((e) => e._tag === "TransactionRejected").map((e) => [e.sender, e.reason])).toEqual(
      forged.map((tx) => [tx.sender, "SystemAccount"])
    )
    const picture = (s: LedgerState) => ({ ...snapshot(s), height: 0, lastBlockHash: "", lastEventsRoot: "", lastTimestamp: 0 })
    expect(picture(state)).toEqual(picture(funded))
    expect(escrowOf(state.ai!, developer.address, MODEL_X)).toBe(900n)
    // A system sender on its "home" transfer shard is refused the same way.
    const reserveHome = genesisState(homeOf(SYSTEM_RESERVE)).state
    const there = applyBlock(reserveHome, nextBlock(reserveHome, [forged[0]!]))
    expect(there.events.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "SystemAccount" })
    expect(there.state.totals).toEqual(reserveHome.totals)
  })
})

const DEV_SPENDABLE = config.devBalance
const MODEL_X = keccakHex(utf8("no such model")) as Hash32
const manifestAt = (price: bigint) =>
  JSON.stringify({ name: "round", version: "1", pricePerCall: price.toString(), minGpuClass: "CPU", license: "MIT", description: "a chain round" })

// ---------------------------------------------------------------- a whole round

interface Chain {
  readonly shards: Map<ShardId, LedgerState>
  readonly events: Map<ShardId, Array<ShardEvent>>
}

/** The devnet with richer dev accounts: a task priced in whole tokens pays every party something. */
const ROUND = new GenesisConfig({ ...config, devBalance: 1_000n * TOKEN })

const newChain = (): Chain => {
  const shards = new Map<ShardId, LedgerState>()
  const events = new Map<ShardId, Array<ShardEvent>>()
  for (const id of LEDGER_SHARDS) {
    const g = run(makeLedger(id), makeLedger(id).initialState, genesisCommand(ROUND, id))
    shards.set(id, g.state)
    events.set(id, [...g.events])
  }
  return { shards, events }
}

/** One block on `shard` with these transactions and receipts: its events. */
const block = (c: Chain, shard: ShardId, txs: ReadonlyArray<Transaction>, receipts: ReadonlyArray<CrossShardReceipt> = []): ReadonlyArray<ShardEvent> => {
  const s = c.shards.get(shard)!
  const r = applyBlock(s, nextBlock(s, txs, receipts))
  c.shards.set(shard, r.state)
  c.events.get(shard)!.push(...r.events)
  return r.events
}

/** Every receipt sent anywhere that its destination has not credited yet. */
const inFlight = (c: Chain): ReadonlyArray<CrossShardReceipt> =>
  [...c.events.values()]
    .flat()
    .flatMap((e) => (e._tag === "CrossShardSent" ? [e.receipt] : []))
    .filter((r) => !HashSet.has(c.shards.get(r.destShard)!.receivedReceipts, r.receiptId))

/** Relay every receipt in flight to its shard (one block each): what each received. */
const relayAll = (c: Chain): void => {
  const pending = inFlight(c)
  for (const id of LEDGER_SHARDS) {
    const mine = pending.filter((r) => r.destShard === id)
    if (mine.length > 0) block(c, id, [], mine)
  }
}

/** Σ balances + Σ burned + in flight over every shard: the genesis supply, always. */
const conserved = (c: Chain): bigint => {
  let total = 0n
  for (const s of c.shards.values()) {
    expect(sumBalances(s)).toBe(s.totals.balances)
    total += s.totals.balances + s.totals.burned
  }
  return total + inFlight(c).reduce((sum, r) => sum + r.amount, 0n)
}

const ai = (c: Chain): LedgerState => c.shards.get(AI)!
const balance = (c: Chain, a: Address): bigint => balanceOf(c.shards.get(homeOf(a))!, a)

interface RoundParams {
  readonly price: bigint
  readonly deposit: bigint
  readonly stake: bigint
  readonly devices: number
  readonly execMs: number
  readonly tasks: number
  /** Index (mod) of the dev accounts playing developer, provider, owner, gateway. */
  readonly who: number
}

const worker = devKeyFromSeed("chain-round/worker")
const FINGERPRINT = keccakHex(utf8("the reference fingerprint")) as Hash32

/** A whole round on a fresh chain: every step's events checked as it goes; the chain at the end. */
const runRound = (p: RoundParams) => {
  const c = newChain()
  const supply = genesisSupply(ROUND)
  const pick = (i: number) => dev[(p.who + i * 5) % dev.length]!
  const [developer, provider, owner, gateway] = [pick(0), pick(1), pick(2), pick(3)]
  const producer = devProposerKey(AI)
  const before = new Map<Address, bigint>(
    [developer.address, provider.address, owner.address, worker.publicKey.address, BURN_ADDRESS].map((a) => [a, balance(c, a)])
  )

  // The provider registers the model on the AI shard (fee 0): its id is the registration's hash, known before the deposit.
  const register = sign(provider.key, { kind: "model.register", weightsHash: keccakHex(utf8("weights")) as Hash32, sizeBytes: 1_000n, manifest: manifestAt(p.price) }, 0n, 0n)
  const model = register.hash

  // 1. The developer's escrow deposit and the owner's stake, on their transfer shards.
  const deposit = sign(developer.key, { kind: "escrow.deposit", model, amount: p.deposit }, 0n, FEE)
  const depositEvents = block(c, homeOf(developer.address), [deposit])
  expect(tags(depositEvents)).toEqual(["BlockApplied", "FeeCharged", "EscrowDeposited", "CrossShardSent", "BlockExecuted"])
  const stakeNonce = owner.address === developer.address ? 1n : 0n
  const stake = sign(owner.key, { kind: "worker.stake", worker: worker.publicKey.address, amount: p.stake }, stakeNonce, FEE)
  const stakeEvents = block(c, homeOf(owner.address), [stake])
  expect(stakeEvents.find((e) => e._tag === "CrossShardSent")).toMatchObject({ to: SYSTEM_STAKE_POOL, destShard: AI, purpose: { kind: "bond" } })
  expect(conserved(c)).toBe(supply)

  // 2. The AI shard takes both receipts (escrow credited, stake bonded), the registration and the worker's.
  const workerRegister = sign(worker, { kind: "worker.register", gpuClass: "H100", devices: p.devices, endpoint: "ws://127.0.0.1:9" }, 0n, 0n)
  const aiEvents1 = block(c, AI, [register, workerRegister], inFlight(c))
  const aiTags = tags(aiEvents1).filter((t) => t.startsWith("Ai") || t.startsWith("Escrow"))
  // The two receipts (in relay order), then the two transactions (in block order).
  expect([...aiTags.slice(0, 2)].sort()).toEqual(["AiStakeBonded", "EscrowCredited"])
  expect(aiTags.slice(2)).toEqual(["AiModelRegistered", "AiWorkerRegistered"])
  expect(aiEvents1.find((e) => e._tag === "EscrowCredited")).toMatchObject({ receiptId: receiptIdOf(deposit.hash), developer: developer.address, model, amount: p.deposit })
  expect(escrowOf(ai(c).ai!, developer.address, model)).toBe(p.deposit)
  expect(bondOf(ai(c).ai!.economy, worker.publicKey.address, owner.address)).toBe(p.stake)
  expect(modelOf(ai(c).ai!, model)?.status).toBe("Pending")

  // 3. The single producer is the AI shard's committee: its attestation verifies the model.
  const attest = sign(producer, { kind: "model.attest", model, verdict: "verified", fingerprint: FINGERPRINT }, 0n, 0n)
  const aiEvents2 = block(c, AI, [attest])
  expect(tags(aiEvents2)).toEqual(["BlockApplied", "FeeCharged", "ModelAttested", "AiModelVerified", "BlockExecuted"])
  expect(modelOf(ai(c).ai!, model)).toMatchObject({ status: "Verified", fingerprint: FINGERPRINT, price: p.price })

  // 4. A gateway settles the tasks: each a signed grant and a signed result.
  const now = ai(c).lastTimestamp
  const grant = (() => {
    const g = { chainId: CHAIN_ID, model, issuedAt: now, expiresAt: now + 60_000, spendMax: p.price * BigInt(p.tasks), nonce: "0x" + "cd".repeat(16) }
    return { ...g, publicKey: developer.key.publicKey.hex, signature: signMessage(sessionGrantDigest(g), developer.key) }
  })()
  const receipts: ReadonlyArray<UsageReceipt> = Array.from({ length: p.tasks }, (_, i) => {
    // The developer's request for the task: the task id is its digest.
    const request = { chainId: CHAIN_ID, model, grantNonce: grant.nonce, inputHash: keccakHex(utf8(`inputs-${i}`)), nonce: "0x" + "ef".repeat(16) }
    const taskId = taskIdOf(request)
    return {
      grant,
      taskId,
      model,
      price: p.price,
      results: [{ worker: worker.publicKey.address, fingerprint: FINGERPRINT, execMs: p.execMs, signature: signMessage(resultDigest(taskId, FINGERPRINT, p.execMs), worker) }],
      request: { inputHash: request.inputHash, nonce: request.nonce, signature: signMessage(taskRequestDigest(request), developer.key) }
    }
  })
  // Only the AI committee settles: on this single-producer chain, the producer (nonce 1 after its attestation).
  const gatewayNonce = 1n
  const settle = sign(producer, { kind: "usage.settle", receipts }, gatewayNonce, 0n)
  const aiEvents3 = block(c, AI, [settle])
  const units = workerOf(ai(c).ai!, worker.publicKey.address)!.gpuUnitsMilli
  const fees = taskFees(ROUND.economics, p.price, [{ worker: worker.publicKey.address, execMs: p.execMs, gpuUnitsMilli: units }])
  const affordable = Number(p.deposit / p.price) // tasks the escrow covers; the rest are refused
  const settled = Math.min(p.tasks, affordable)
  expect(aiEvents3.filter((e) => e._tag === "UsageSettled")).toHaveLength(settled)
  expect(aiEvents3.filter((e) => e._tag === "UsageRefused").map((e) => (e as { reason: string }).reason)).toEqual(
    Array.from({ length: p.tasks - settled }, () => "InsufficientEscrow")
  )
  // Each payout is followed by its receipt from the escrow account, named (settle tx, index).
  const payouts = aiEvents3.filter((e) => e._tag === "AiPayout")
  const sends = aiEvents3.filter((e): e is CrossShardSent => e._tag === "CrossShardSent")
  expect(sends).toHaveLength(payouts.length)
  payouts.forEach((e, i) => {
    if (e._tag !== "AiPayout") throw new Error("not a payout")
    expect(e.source).toBe("escrow")
    expect(sends[i]).toMatchObject({ from: SYSTEM_ESCROW, to: e.to, amount: e.amount, txHash: settle.hash, destShard: homeOf(e.to), receiptId: receiptIdOf(settle.hash, e.index) })
  })
  expect(new Set(sends.map((s) => s.receiptId)).size).toBe(sends.length)
  const spent = p.price * BigInt(settled)
  expect(escrowOf(ai(c).ai!, developer.address, model)).toBe(p.deposit - spent)
  expect(balanceOf(ai(c), SYSTEM_ESCROW)).toBe(p.deposit - spent)
  expect(conserved(c)).toBe(supply)

  // 5. The payouts arrive on the payees' transfer shards; nothing stays in flight.
  relayAll(c)
  expect(inFlight(c)).toEqual([])
  expect(conserved(c)).toBe(supply)
  const n = BigInt(settled)
  const expected = new Map<Address, bigint>()
  const add = (a: Address, v: bigint) => expected.set(a, (expected.get(a) ?? before.get(a)!) + v)
  add(developer.address, -p.deposit - FEE)
  add(owner.address, -p.stake - FEE)
  add(provider.address, fees.providerNet * n)
  add(worker.publicKey.address, fees.computeFees.reduce((s, f) => s + f.amount, 0n) * n)
  add(BURN_ADDRESS, config.economics.protocolFeeSink === "burn" ? fees.protocolFee * n : 0n)
  for (const [a, v] of expected) expect([a, balance(c, a)]).toEqual([a, v])
  // The reserve and the foundation fund did not move; the stake stays in the pool.
  expect(balanceOf(ai(c), SYSTEM_RESERVE)).toBe(config.economics.miningReserve)
  expect(balanceOf(ai(c), SYSTEM_FOUNDATION)).toBe(config.economics.foundationFund)
  expect(balanceOf(ai(c), SYSTEM_STAKE_POOL)).toBe(p.stake)
  // A second settle of the same tasks pays nothing again (exactly once).
  const again = block(c, AI, [sign(producer, { kind: "usage.settle", receipts }, gatewayNonce + 1n, 0n)])
  expect(again.filter((e) => e._tag === "UsageSettled" || e._tag === "AiPayout")).toEqual([])
  expect(again.filter((e) => e._tag === "UsageRefused").map((e) => (e as { reason: string }).reason)).toEqual(
    receipts.map((_, i) => (i < settled ? "AlreadySettled" : "InsufficientEscrow"))
  )

  // 6. The beacon's epoch receipt closes epoch 0 on the AI shard: its rewards leave the reserve / foundation / pool as receipts.
  const endAt = ai(c).lastTimestamp
  const epochReceipt = epochZeroReceipt(endAt)
  const sources = new Map<Address, bigint>([SYSTEM_RESERVE, SYSTEM_FOUNDATION, SYSTEM_STAKE_POOL].map((a) => [a, balanceOf(ai(c), a)]))
  const payees = new Map<Address, bigint>()
  const closeEvents = block(c, AI, [], [epochReceipt])
  expect(closeEvents.filter((e) => e._tag === "EpochClosed")).toHaveLength(1)
  const rewards = closeEvents.filter((e) => e._tag === "AiPayout")
  const rewardSends = closeEvents.filter((e): e is CrossShardSent => e._tag === "CrossShardSent")
  expect(rewardSends).toHaveLength(rewards.length)
  const SOURCE = { reserve: SYSTEM_RESERVE, foundation: SYSTEM_FOUNDATION, stakePool: SYSTEM_STAKE_POOL, escrow: SYSTEM_ESCROW } as const
  rewards.forEach((e, i) => {
    if (e._tag !== "AiPayout") throw new Error("not a payout")
    expect(rewardSends[i]).toMatchObject({ from: SOURCE[e.source], to: e.to, amount: e.amount, receiptId: receiptIdOf(epochCloseCause(0), e.index) })
    sources.set(SOURCE[e.source], sources.get(SOURCE[e.source])! - e.amount)
    if (!payees.has(e.to)) payees.set(e.to, balance(c, e.to))
  })
  for (const [a, v] of sources) expect([a, balanceOf(ai(c), a)]).toEqual([a, v])
  expect(conserved(c)).toBe(supply)
  relayAll(c)
  expect(inFlight(c)).toEqual([])
  for (const e of rewards) if (e._tag === "AiPayout") payees.set(e.to, payees.get(e.to)! + e.amount)
  for (const [a, v] of payees) expect([a, balance(c, a)]).toEqual([a, v])
  expect(conserved(c)).toBe(supply)
  return { c, settled, fees, rewards: rewards.length }
}

describe("a whole AI round on the chain ledger", () => {
  it("deposit → EscrowCredited; register + attest → AiModelVerified; worker + bond; usage.settle → UsageSettled, payouts credited on the payees' shards to the unit; the epoch receipt → rewards from the reserve; conservation", () => {
    const { settled, fees, rewards } = runRound({ price: TOKEN, deposit: (7n * TOKEN) / 2n, stake: 2_000n, devices: 2, execMs: 750, tasks: 4, who: 1 })
    expect(settled).toBe(3)
    // The fees were real: something went to each party.
    expect(fees.providerNet > 0n && fees.protocolFee > 0n && fees.computeFeesTotal > 0n).toBe(true)
    // The epoch close paid rewards (task mining for the verified model's tasks, at least) by receipts.
    expect(rewards).toBeGreaterThan(0)
  })

  it("holds for random rounds: prices, deposits, stakes, devices, execution times, task counts and who plays whom", () => {
    fc.assert(
      fc.property(
        fc.record({
          price: fc.bigInt({ min: 1n, max: 10n * TOKEN }),
          depositTasks: fc.integer({ min: 1, max: 4 }),
          extra: fc.bigInt({ min: 0n, max: 999n }),
          stake: fc.bigInt({ min: 1n, max: 100_000n }),
          devices: fc.integer({ min: 1, max: 8 }),
          execMs: fc.integer({ min: 0, max: 100_000 }),
          tasks: fc.integer({ min: 1, max: 5 }),
          who: fc.nat({ max: dev.length - 1 })
        }),
        (r) => {
          const deposit = r.price * BigInt(r.depositTasks) + (r.extra % r.price)
          fc.pre(deposit + FEE + r.stake + FEE <= ROUND.devBalance)
          runRound({ price: r.price, deposit, stake: r.stake, devices: r.devices, execMs: r.execMs, tasks: r.tasks, who: r.who })
        }
      ),
      { numRuns: 15 }
    )
  })
})

// ---------------------------------------------------------------- a wrong result proven, slashed at the close

describe("result.challenge on the chain ledger", () => {
  it("a member's proof → AiResultProvenWrong (no money moves); the epoch close slashes the loser's bond by receipts — developer, reporter, burn — to the unit; once only; conservation", () => {
    const c = newChain()
    const supply = genesisSupply(ROUND)
    const [developer, provider, owner] = [dev[1]!, dev[2]!, dev[3]!]
    const [loser, winner, referee] = ["loser", "winner", "referee"].map((w) => devKeyFromSeed(`chain-challenge/${w}`)) as [PrivateKey, PrivateKey, PrivateKey]
    const producer = devProposerKey(AI)
    const STAKE = 10_000n

    const register = sign(provider.key, { kind: "model.register", weightsHash: keccakHex(utf8("weights")) as Hash32, sizeBytes: 1_000n, manifest: manifestAt(TOKEN) }, 0n, 0n)
    const model = register.hash
    block(c, homeOf(owner.address), [sign(owner.key, { kind: "worker.stake", worker: loser.publicKey.address, amount: STAKE }, 0n, FEE)])
    const registrations = [loser, winner, referee].map((k) => sign(k, { kind: "worker.register", gpuClass: "H100", devices: 1, endpoint: "ws://127.0.0.1:9" }, 0n, 0n))
    block(c, AI, [register, ...registrations], inFlight(c))
    expect(bondOf(ai(c).ai!.economy, loser.publicKey.address, owner.address)).toBe(STAKE)

    const taskId = keccakHex(utf8("the task")) as Hash32
    const now = ai(c).lastTimestamp
    const g = { chainId: CHAIN_ID, model, issuedAt: now, expiresAt: now + 60_000, spendMax: TOKEN, nonce: "0x" + "ef".repeat(16) }
    const grant = { ...g, publicKey: developer.key.publicKey.hex, signature: signMessage(sessionGrantDigest(g), developer.key) }
    const result = (k: PrivateKey, fingerprint: Hash32, execMs: number) => ({
      worker: k.publicKey.address,
      fingerprint,
      execMs,
      signature: signMessage(resultDigest(taskId, fingerprint, execMs), k)
    })
    const payload: TransactionPayload = {
      kind: "result.challenge",
      grant,
      taskId,
      model,
      loser: result(loser, keccakHex(utf8("a lie")) as Hash32, 300),
      winner: result(winner, FINGERPRINT, 320),
      referee: result(referee, FINGERPRINT, 310)
    }

    // Only a member of the AI committee may send it: the door says so before any block.
    const outsider = sign(developer.key, payload, 0n, 0n)
    const door = precheckTransaction(ai(c), emptyMempool(), outsider)
    expect(Either.isLeft(door) && door.left.reason).toBe("NotCommitteeMember")
    const challenge = sign(producer, payload, 0n, 0n)
    expect(Either.isRight(precheckTransaction(ai(c), emptyMempool(), challenge))).toBe(true)

    const pool = balanceOf(ai(c), SYSTEM_STAKE_POOL)
    const proven = block(c, AI, [challenge])
    expect(tags(proven)).toEqual(["BlockApplied", "FeeCharged", "AiResultProvenWrong", "BlockExecuted"])
    expect(proven.find((e) => e._tag === "AiResultProvenWrong")).toMatchObject({
      taskId,
      worker: loser.publicKey.address,
      developer: developer.address,
      reporter: producer.publicKey.address
    })
    expect(balanceOf(ai(c), SYSTEM_STAKE_POOL)).toBe(pool)
    expect(conserved(c)).toBe(supply)

    // The same proof again (even from the same member, next nonce) is rejected: a result is slashed once.
    const again = block(c, AI, [sign(producer, payload, 1n, 0n)])
    expect(again.find((e) => e._tag === "TransactionRejected")).toMatchObject({ reason: "AlreadyChallenged" })

    // The close: 10 % of the bond, of which the developer 50 %, the reporter 20 %, the rest burned (devnet economics).
    const slashing = ROUND.economics.slashing
    const amount = (STAKE * slashing.wrongResultPpm) / 1_000_000n
    const toUser = (amount * slashing.toUserPpm) / 1_000_000n
    const toReporter = (amount * slashing.toReporterPpm) / 1_000_000n
    const burned = amount - toUser - toReporter
    expect(amount > 0n && toUser > 0n && toReporter > 0n && burned > 0n).toBe(true)
    const payees = [developer.address, producer.publicKey.address, BURN_ADDRESS] as const
    const before = new Map(payees.map((a) => [a, balance(c, a)]))
    const close = block(c, AI, [], [epochZeroReceipt(ai(c).lastTimestamp)])
    expect(close.filter((e) => e._tag === "Slashed")).toEqual([
      expect.objectContaining({ worker: loser.publicKey.address, reason: "WrongResult", amount, toUser, user: developer.address, toReporter, reporter: producer.publicKey.address, burned })
    ])
    const fromPool = close.filter((e): e is CrossShardSent => e._tag === "CrossShardSent" && e.from === SYSTEM_STAKE_POOL)
    expect(fromPool.map((s) => [s.to, s.amount])).toEqual([
      [developer.address, toUser],
      [producer.publicKey.address, toReporter],
      [BURN_ADDRESS, burned]
    ])
    expect(balanceOf(ai(c), SYSTEM_STAKE_POOL)).toBe(pool - amount)
    expect(bondOf(ai(c).ai!.economy, loser.publicKey.address, owner.address)).toBe(STAKE - amount)
    expect(conserved(c)).toBe(supply)
    relayAll(c)
    expect(inFlight(c)).toEqual([])
    expect(payees.map((a) => balance(c, a) - before.get(a)!)).toEqual([toUser, toReporter, burned])
    expect(conserved(c)).toBe(supply)
  })
})
