/**
 * The beacon's validator registry: the `validator.*` codecs and their strict
 * decoding; stake (a receipt from a transfer shard credits the beacon),
 * register (proof of possession, key uniqueness, stake), unbond (paid back
 * to the unit at the next epoch end); the election at each epoch end
 * (`electShardCommittees` seeded with the block's parent hash, or the
 * previous committees kept); and a property over random workloads:
 * decide ∘ evolve equals a refold of the events, committees hold only
 * registered validators, money is conserved across the shards and in flight.
 */
import { describe, expect, it } from "vitest"
import { Either, HashMap } from "effect"
import fc from "fast-check"
import { fold } from "../../domain/Decider.js"
import type { Block } from "../../domain/chain/block.js"
import { electShardCommittees, type ShardCommittee } from "../../domain/chain/committees.js"
import { precheckTransaction } from "../../domain/chain/admission.js"
import { CommitteesElected, CrossShardSent, type ShardEvent } from "../../domain/chain/events.js"
import { GenesisConfig, genesisCommand } from "../../domain/chain/genesis.js"
import { keccakHex } from "../../domain/chain/hash.js"
import { bytesToHex, utf8 } from "../../domain/chain/hex.js"
import { addressBytes, devKey, type Address, type PrivateKey } from "../../domain/chain/keys.js"
import {
  ApplyBlock,
  balanceOf,
  electedCommittee,
  genesisHash,
  makeLedger,
  type LedgerState
} from "../../domain/chain/ledger.js"
import { registeredValidator } from "../../domain/chain/ledgerState.js"
import { emptyMempool } from "../../domain/chain/mempool.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import { encodeRlp, type RlpInput } from "../../domain/chain/rlp.js"
import { BEACON_SHARD, shardOf, type ShardId } from "../../domain/chain/sharding.js"
import {
  decodeTransaction,
  signTransaction,
  TransactionBody,
  type Transaction,
  type TransactionPayload
} from "../../domain/chain/transaction.js"
import { homeShardOf } from "../../domain/chain/txRules.js"
import { candidatesOf } from "../../domain/chain/validatorRegistry.js"
import { devValidatorKeys, devValidators } from "../../domain/chain/validators.js"
import { blsKeyFromSeed, proofOfPossession } from "../../domain/consensus/bls.js"
import { EconomicsConfig } from "../../domain/economics/config.js"
import { certifiedBlock } from "./certify.js"
import { CHAIN_ID, GENESIS_TIME } from "./helpers.js"

const BEACON = BEACON_SHARD as ShardId
const EPOCH_BLOCKS = 5
const FEE = 10n
const DEV_BALANCE = 1_000_000n
const validators = devValidators(4)
const base = new GenesisConfig({ chainId: CHAIN_ID, timestamp: GENESIS_TIME, devAccountCount: 24, devBalance: DEV_BALANCE, validators })
const bftConfig = (patch: Partial<GenesisConfig> = {}) =>
  new GenesisConfig({ ...base, ...patch, economics: new EconomicsConfig({ ...base.economics, epochBlocks: EPOCH_BLOCKS }) })
// The beacon, two transfer shards and the AI shard: the beacon elects a committee for each.
const SHARD_IDS = [0, 1, 2, 3] as unknown as ReadonlyArray<ShardId>

/** Dev accounts (not validators) used as would-be validators, with a BLS key each. */
const people = Array.from({ length: 4 }, (_, i) => {
  const key = devKey(i + 1)
  const bls = blsKeyFromSeed(utf8(`validator-registry-test-${i}`))
  return { key, address: key.publicKey.address, bls, pop: bytesToHex(proofOfPossession(bls.secretKey)), blsHex: bytesToHex(bls.publicKey) }
})
const homeOf = (a: Address): ShardId => shardOf(a, 2)

const sign = (key: PrivateKey, payload: TransactionPayload, nonce: bigint, fee = FEE): Transaction =>
  signTransaction(new TransactionBody({ chainId: CHAIN_ID, nonce, fee, payload }), key)

const stakeTx = (key: PrivateKey, amount: bigint, nonce: bigint, fee = FEE) => sign(key, { kind: "validator.stake", amount }, nonce, fee)
const registerTx = (p: (typeof people)[number], nonce: bigint, fee = FEE, over: Partial<{ blsPublicKey: string; proofOfPossession: string }> = {}) =>
  sign(
    p.key,
    {
      kind: "validator.register",
      blsPublicKey: over.blsPublicKey ?? p.blsHex,
      proofOfPossession: over.proofOfPossession ?? p.pop,
      endpoint: `ws://validator-${p.address.slice(2, 8)}:7000`
    },
    nonce,
    fee
  )
const unbondTx = (key: PrivateKey, nonce: bigint, fee = FEE) => sign(key, { kind: "validator.unbond" }, nonce, fee)

/** The next block of `state`'s shard, certified by its whole committee, as every node would build it. */
const certified = (state: LedgerState, txs: ReadonlyArray<Transaction> = [], receipts: ReadonlyArray<CrossShardReceipt> = []): Block =>
  certifiedBlock(state, txs, { receipts })

// ---------------------------------------------------------------- a chain of three ledgers with a relay

class Chain {
  readonly states = new Map<ShardId, LedgerState>()
  readonly events = new Map<ShardId, Array<ShardEvent>>()
  /** Receipts sent and not yet credited, by destination. */
  readonly inFlight = new Map<ShardId, Array<CrossShardReceipt>>()
  elections = 0
  constructor(readonly config: GenesisConfig) {
    for (const shard of SHARD_IDS) {
      const ledger = makeLedger(shard)
      const events = Either.getOrThrow(ledger.decide(ledger.initialState, genesisCommand(config, shard)))
      this.states.set(shard, fold(ledger.evolve, ledger.initialState, events))
      this.events.set(shard, [...events])
      this.inFlight.set(shard, [])
    }
  }
  state(shard: ShardId): LedgerState {
    return this.states.get(shard)!
  }
  get beacon(): LedgerState {
    return this.state(BEACON)
  }
  /** One block on `shard` holding `txs` and every receipt waiting for it; returns its events. */
  block(shard: ShardId, txs: ReadonlyArray<Transaction> = []): ReadonlyArray<ShardEvent> {
    const ledger = makeLedger(shard)
    const state = this.state(shard)
    const receipts = this.inFlight.get(shard)!
    const r = ledger.decide(state, new ApplyBlock({ block: certified(state, txs, receipts) }))
    if (Either.isLeft(r)) throw new Error(`block refused: ${r.left.message}`)
    this.inFlight.set(shard, [])
    this.states.set(shard, fold(ledger.evolve, state, r.right))
    this.events.get(shard)!.push(...r.right)
    for (const e of r.right) if (e._tag === "CrossShardSent") this.inFlight.get(e.destShard)!.push(e.receipt)
    const elected = r.right.find((e): e is CommitteesElected => e._tag === "CommitteesElected")
    if (elected !== undefined) {
      // Members are registered validators that stay, or (a failed election) the previous epoch's committees.
      const staying = new Set(candidatesOf(this.beacon).map((x) => x.address as string))
      const previous = HashMap.unsafeGet(this.beacon.elections, elected.epoch - 1)
      for (const [i, committee] of elected.committees.entries()) {
        const members = committee.members.map((m) => m.address as string)
        if (elected.kept) expect(members).toEqual(previous[i]!.members.map((m) => m.address))
        else for (const m of members) expect(staying.has(m)).toBe(true)
      }
      this.elections += 1
    }
    return r.right
  }
  /** Beacon blocks until the current epoch ends; the events of the last. */
  endEpoch(): ReadonlyArray<ShardEvent> {
    for (;;) {
      const events = this.block(BEACON)
      if (events.some((e) => e._tag === "EpochEnded")) return events
    }
  }
  /** balances + burned + in flight over every shard: what genesis funded. */
  held(): bigint {
    let sum = 0n
    for (const s of this.states.values()) sum += s.totals.balances + s.totals.burned + s.totals.sentOut - s.totals.receivedIn
    return sum
  }
  funded(): bigint {
    let sum = 0n
    for (const s of this.states.values()) sum += s.totals.funded
    return sum
  }
}

/** The first rejection's reason in a block's events. */
const rejection = (events: ReadonlyArray<ShardEvent>) => {
  const r = events.find((e) => e._tag === "TransactionRejected")
  return r?._tag === "TransactionRejected" ? r.reason : undefined
}

/** A comparable picture of the registry and elections. */
const registryView = (s: LedgerState) => ({
  registry: Array.from(s.registry, ([a, v]) => [a, v.blsPublicKey, v.endpoint, v.genesisStake, v.stake, v.leaving, v.unbondTx] as const).sort((x, y) =>
    x[0] < y[0] ? -1 : 1
  ),
  elections: Array.from(s.elections, ([epoch, cs]) => [epoch, cs.map((c) => [c.shard, c.epoch, c.members.map((m) => [m.address, m.stake])])] as const).sort(
    (x, y) => x[0] - y[0]
  )
})

const fullView = (s: LedgerState) => ({
  ...registryView(s),
  height: s.height,
  lastBlockHash: s.lastBlockHash,
  epoch: s.epoch,
  totals: s.totals,
  accounts: Array.from(s.accounts, ([a, acc]) => [a, acc.balance, acc.nonce] as const).sort((x, y) => (x[0] < y[0] ? -1 : 1))
})

// ---------------------------------------------------------------- codecs

/** A signed transaction's RLP with `kind` and `payload` replaced (decoding never reaches the signature). */
const withPayload = (kind: string, payload: RlpInput): Uint8Array => {
  const tx = stakeTx(people[0]!.key, 1n, 0n)
  return encodeRlp([tx.body.chainId, tx.body.nonce, tx.body.fee, utf8(kind), payload, tx.publicKey.bytes, tx.signature])
}
const decodeDetail = (bytes: Uint8Array): string => {
  const r = decodeTransaction(bytes)
  return Either.isRight(r) ? "decoded" : r.left._tag === "MalformedTransaction" ? r.left.detail : r.left._tag
}

describe("validator.* codecs", () => {
  const p = people[0]!
  it.each<[string, Transaction]>([
    ["validator.stake", stakeTx(p.key, 123_456n, 3n)],
    ["validator.register", registerTx(p, 4n)],
    ["validator.unbond", unbondTx(p.key, 5n)]
  ])("%s round-trips through its RLP", (_, tx) => {
    const back = Either.getOrThrow(decodeTransaction(tx.encoded))
    expect(back.hash).toBe(tx.hash)
    expect(back.body.payload).toEqual(tx.body.payload)
  })
  const key = p.bls.publicKey
  const pop = Uint8Array.from(Buffer.from(p.pop.slice(2), "hex"))
  it.each<[string, string, RlpInput, string]>([
    ["a stake of 0", "validator.stake", [0n], "validator.stake.amount must be positive"],
    ["a stake with two fields", "validator.stake", [1n, 2n], "validator.stake payload must be a list of 1"],
    ["a 47-byte BLS key", "validator.register", [key.subarray(1), pop, utf8("ws://a:1")], "validator.register.blsPublicKey must be 48 bytes, got 47"],
    ["a 95-byte proof", "validator.register", [key, pop.subarray(1), utf8("ws://a:1")], "validator.register.proofOfPossession must be 96 bytes, got 95"],
    ["an empty endpoint", "validator.register", [key, pop, new Uint8Array()], "validator.register.endpoint must be 1 to 200 characters, got 0"],
    ["a 201-character endpoint", "validator.register", [key, pop, utf8("w".repeat(201))], "validator.register.endpoint must be 1 to 200 characters, got 201"],
    ["an endpoint that is not UTF-8", "validator.register", [key, pop, Uint8Array.of(0xff)], "validator.register.endpoint is not UTF-8"],
    ["a list for the key", "validator.register", [[key], pop, utf8("ws://a:1")], "validator.register.blsPublicKey must be 48 bytes, got a list"],
    ["an unbond with a field", "validator.unbond", [1n], "validator.unbond payload must be a list of 0"]
  ])("refuses %s", (_, kind, payload, detail) => {
    expect(decodeDetail(withPayload(kind, payload))).toBe(detail)
  })
  it("the schema refuses what the codec refuses", () => {
    const bad = (payload: unknown) => () => new TransactionBody({ chainId: CHAIN_ID, nonce: 0n, fee: 0n, payload: payload as TransactionPayload })
    expect(bad({ kind: "validator.register", blsPublicKey: "0x12", proofOfPossession: p.pop, endpoint: "ws://a" })).toThrow()
    expect(bad({ kind: "validator.register", blsPublicKey: p.blsHex, proofOfPossession: p.pop, endpoint: "" })).toThrow()
    expect(bad({ kind: "validator.stake", amount: 0n })).toThrow()
  })
  it("register and unbond run on the beacon, stake on the sender's transfer shard", () => {
    expect(homeShardOf(registerTx(p, 0n), 2)).toBe(0)
    expect(homeShardOf(unbondTx(p.key, 0n), 2)).toBe(0)
    expect(homeShardOf(stakeTx(p.key, 1n, 0n), 2)).toBe(homeOf(p.address))
  })
})

// ---------------------------------------------------------------- genesis

describe("registry genesis", () => {
  it("a BFT beacon registers the genesis validators and records epoch 0's committees", () => {
    const c = new Chain(bftConfig())
    expect(candidatesOf(c.beacon).map((x) => [x.address, x.stake])).toEqual(
      [...validators].sort((a, b) => (a.address < b.address ? -1 : 1)).map((v) => [v.address, v.stake])
    )
    for (const shard of SHARD_IDS) {
      expect(electedCommittee(c.beacon, 0, shard)?.members.map((m) => m.address)).toEqual(validators.map((v) => v.address))
    }
    expect(c.beacon.chain?.committeeSize).toBe(4)
    expect(HashMap.size(c.state(1 as ShardId).registry)).toBe(0)
  })
  it("committeeSize enters the beacon genesis (and its hash) only when set", () => {
    const plain = genesisCommand(bftConfig(), BEACON)
    const sized = genesisCommand(bftConfig({ committeeSize: 3 }), BEACON)
    expect(plain.committeeSize).toBeUndefined()
    expect(sized.committeeSize).toBe(3)
    expect(genesisCommand(bftConfig({ committeeSize: 3 }), 1 as ShardId).committeeSize).toBeUndefined()
    // The hash of a genesis without committeeSize keeps its old layout.
    const v = plain.validators!.map((x) => [addressBytes(x.address), Uint8Array.from(Buffer.from(x.blsPublicKey.slice(2), "hex")), x.stake])
    const old = keccakHex(
      encodeRlp([CHAIN_ID, 0n, 2n, BigInt(GENESIS_TIME), [], addressBytes(plain.governance!), BigInt(EPOCH_BLOCKS), v])
    )
    expect(genesisHash(BEACON, plain)).toBe(old)
    expect(genesisHash(BEACON, sized)).not.toBe(old)
    const events = Either.getOrThrow(makeLedger(BEACON).decide(makeLedger(BEACON).initialState, plain))
    expect("committeeSize" in events[0]!).toBe(false)
  })
})

// ---------------------------------------------------------------- stake, register, unbond, elections

describe("stake, register, unbond", () => {
  it("stakes to the beacon, registers, is elected, unbonds and is paid back to the unit", () => {
    const c = new Chain(bftConfig({ committeeSize: 4 }))
    const p = people[0]!
    const home = homeOf(p.address)
    const STAKE = 50_000n
    // stake: a receipt to the sender's own beacon account
    const sent = c.block(home, [stakeTx(p.key, STAKE, 0n)])
    const send = sent.find((e): e is CrossShardSent => e._tag === "CrossShardSent")!
    expect(send).toMatchObject({ sourceShard: home, destShard: 0, from: p.address, to: p.address, amount: STAKE })
    expect(balanceOf(c.state(home), p.address)).toBe(DEV_BALANCE - STAKE - FEE)
    const credited = c.block(BEACON)
    expect(credited.find((e) => e._tag === "CrossShardReceived")).toMatchObject({ to: p.address, amount: STAKE, destShard: 0 })
    expect(balanceOf(c.beacon, p.address)).toBe(STAKE)
    // register: the beacon account pays the fee; stake = beacon balance
    const reg = c.block(BEACON, [registerTx(p, 0n)])
    expect(reg.find((e) => e._tag === "ValidatorRegistered")).toMatchObject({ validator: p.address, blsPublicKey: p.blsHex, proofOfPossession: p.pop })
    expect(registeredValidator(c.beacon, p.address)).toMatchObject({ stake: STAKE - FEE, genesisStake: 0n, leaving: false })
    // re-registering updates the endpoint
    const again = sign(p.key, { kind: "validator.register", blsPublicKey: p.blsHex, proofOfPossession: p.pop, endpoint: "ws://elsewhere:9" }, 1n)
    c.block(BEACON, [again])
    expect(registeredValidator(c.beacon, p.address)).toMatchObject({ endpoint: "ws://elsewhere:9", stake: STAKE - 2n * FEE })
    // the epoch end elects from the registry, seeded with the block's parent hash
    while (c.beacon.height < EPOCH_BLOCKS - 1) c.block(BEACON)
    const parent = c.beacon.lastBlockHash
    const before = c.beacon
    const end = c.endEpoch()
    expect(end.map((e) => e._tag).slice(-4)).toEqual(["EpochEnded", "CommitteesElected", "CrossShardSent", "BlockExecuted"])
    const elected = end.find((e): e is CommitteesElected => e._tag === "CommitteesElected")!
    expect(elected).toMatchObject({ epoch: 1, seed: parent, kept: false })
    expect(c.beacon.height).toBe(EPOCH_BLOCKS)
    const expected = Either.getOrThrow(
      electShardCommittees({ candidates: candidatesOf(before), shards: SHARD_IDS, committeeSize: 4, epoch: 1, seed: parent })
    )
    expect(elected.committees).toEqual(expected)
    expect(candidatesOf(before).map((x) => x.address)).toContain(p.address)
    for (const shard of SHARD_IDS) expect(electedCommittee(c.beacon, 1, shard)).toEqual(expected[shard])
    // unbond: leaving now, gone (and paid back) at the next epoch end
    c.block(BEACON, [unbondTx(p.key, 2n)])
    expect(registeredValidator(c.beacon, p.address)?.leaving).toBe(true)
    const beaconBalance = balanceOf(c.beacon, p.address)
    expect(beaconBalance).toBe(STAKE - 3n * FEE)
    const end2 = c.endEpoch()
    expect(end2.map((e) => e._tag).slice(-6)).toEqual([
      "EpochEnded",
      "CrossShardSent",
      "ValidatorLeft",
      "CommitteesElected",
      "CrossShardSent", // the AI shard's epoch receipt (amount 0)
      "BlockExecuted"
    ])
    expect(end2.find((e) => e._tag === "CrossShardSent")).toMatchObject({ sourceShard: 0, destShard: home, from: p.address, to: p.address, amount: beaconBalance })
    expect(end2.find((e) => e._tag === "ValidatorLeft")).toMatchObject({ validator: p.address, epoch: 1, paidBack: beaconBalance })
    expect(registeredValidator(c.beacon, p.address)).toBeUndefined()
    const e2 = end2.find((e): e is CommitteesElected => e._tag === "CommitteesElected")!
    expect(e2.committees.flatMap((x) => x.members.map((m: { address: string }) => m.address))).not.toContain(p.address)
    expect(balanceOf(c.beacon, p.address)).toBe(0n)
    // the transfer shard credits the payback: every unit back but the four fees
    c.block(home)
    expect(balanceOf(c.state(home), p.address)).toBe(DEV_BALANCE - 4n * FEE)
    expect(c.held()).toBe(c.funded())
  })

  it("refuses registrations with a bad proof, a taken key, no stake; unbonds of non-validators and twice", () => {
    const c = new Chain(bftConfig())
    const [a, b, d] = [people[0]!, people[1]!, people[2]!]
    c.block(homeOf(a.address), [stakeTx(a.key, 1_000n, 0n)])
    if (homeOf(b.address) !== homeOf(a.address)) c.block(homeOf(b.address), [stakeTx(b.key, 1_000n, 0n)])
    else c.block(homeOf(b.address), [stakeTx(b.key, 1_000n, 0n)])
    c.block(BEACON)
    const v0 = devValidatorKeys(0).bls
    const cases: Array<[Transaction, string]> = [
      [registerTx(a, 0n, FEE, { proofOfPossession: b.pop }), "BadProofOfPossession"],
      [registerTx(a, 0n, FEE, { blsPublicKey: bytesToHex(v0.publicKey), proofOfPossession: bytesToHex(proofOfPossession(v0.secretKey)) }), "KeyTaken"],
      [registerTx(d, 0n, 0n), "NoStake"],
      [registerTx(a, 0n, 1_000n), "NoStake"],
      [unbondTx(a.key, 0n), "NotAValidator"],
      [stakeTx(a.key, 1n, 0n), "WrongShard"]
    ]
    for (const [tx, reason] of cases) {
      expect(rejection(c.block(BEACON, [tx])), reason).toBe(reason)
      // admission refuses the same, before any block
      const pre = precheckTransaction(c.beacon, emptyMempool(), tx)
      expect(Either.isLeft(pre) && pre.left.reason).toBe(reason)
    }
    c.block(BEACON, [registerTx(a, 0n)])
    expect(rejection(c.block(BEACON, [registerTx(b, 0n, FEE, { blsPublicKey: a.blsHex, proofOfPossession: a.pop })]))).toBe("KeyTaken")
    const leaving = c.block(BEACON, [unbondTx(a.key, 1n), unbondTx(a.key, 2n), registerTx(a, 2n)])
    expect(leaving.filter((e) => e._tag === "TransactionRejected").map((e) => e._tag === "TransactionRejected" && e.reason)).toEqual([
      "AlreadyLeaving",
      "AlreadyLeaving"
    ])
    // register and unbond are refused on a transfer shard
    expect(rejection(c.block(homeOf(b.address), [registerTx(b, 1n)]))).toBe("WrongShard")
  })

  it("a single-producer chain refuses validator.stake (no registry to stake into)", async () => {
    const { accountsOn, applyBlock, genesisState, nextBlock } = await import("./helpers.js")
    const { state } = genesisState(1 as ShardId)
    const sender = accountsOn(1 as ShardId)[0]!
    const { events } = applyBlock(state, nextBlock(state, [stakeTx(sender.key, 5n, 0n)]))
    expect(rejection(events)).toBe("NoValidatorSet")
  })

  it("keeps the previous committees when the election fails (everyone left)", () => {
    const c = new Chain(bftConfig())
    // Genesis validators hold no beacon balance: they unbond with fee 0.
    const keys = validators.map((_, i) => devValidatorKeys(i).secp)
    c.block(BEACON, keys.map((k) => unbondTx(k, 0n, 0n)))
    const end = c.endEpoch()
    const elected = end.find((e): e is CommitteesElected => e._tag === "CommitteesElected")!
    expect(elected.kept).toBe(true)
    expect(elected.failure).toMatch(/BadSize|NotEnough/)
    expect(end.filter((e) => e._tag === "ValidatorLeft")).toHaveLength(4)
    // No payback (nobody held a beacon balance): the only send is the AI shard's epoch receipt, of amount 0.
    expect(end.filter((e) => e._tag === "CrossShardSent").map((e) => (e as { amount: bigint }).amount)).toEqual([0n])
    for (const shard of SHARD_IDS) {
      expect(electedCommittee(c.beacon, 1, shard)).toEqual({ ...electedCommittee(c.beacon, 0, shard)!, epoch: 1 })
    }
    // and the next epoch keeps them again
    c.endEpoch()
    expect(electedCommittee(c.beacon, 2, BEACON)?.members).toEqual(electedCommittee(c.beacon, 0, BEACON)?.members)
  })
})

// ---------------------------------------------------------------- property

type Op =
  | { readonly op: "stake"; readonly who: number; readonly amount: bigint }
  | { readonly op: "register"; readonly who: number }
  | { readonly op: "unbond"; readonly who: number }
  | { readonly op: "beacon" }
  | { readonly op: "relay" }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("stake" as const), who: fc.integer({ min: 0, max: 3 }), amount: fc.bigInt({ min: 1n, max: 20_000n }) }),
  fc.record({ op: fc.constant("register" as const), who: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ op: fc.constant("unbond" as const), who: fc.integer({ min: 0, max: 5 }) }),
  fc.constant({ op: "beacon" as const }),
  fc.constant({ op: "relay" as const })
)

describe("registry property", () => {
  it("decide∘evolve = refold; committees hold registered validators; money is conserved", () => {
    let elections = 0
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 6, maxLength: 14 }), (ops) => {
        const c = new Chain(bftConfig({ committeeSize: 3 }))
        // who 0..3: people; 4, 5: genesis validators 0 and 1 (unbond only, fee 0)
        const keyOf = (who: number) => (who < 4 ? people[who]!.key : devValidatorKeys(who - 4).secp)
        const beaconNonce = (who: number) => c.beacon.accounts.pipe(HashMap.get(keyOf(who).publicKey.address), (o) => (o._tag === "Some" ? o.value.nonce : 0n))
        const homeNonce = (who: number) => {
          const a = keyOf(who).publicKey.address
          return c.state(homeOf(a)).accounts.pipe(HashMap.get(a), (o) => (o._tag === "Some" ? o.value.nonce : 0n))
        }
        for (const o of ops) {
          switch (o.op) {
            case "stake":
              c.block(homeOf(people[o.who]!.address), [stakeTx(people[o.who]!.key, o.amount, homeNonce(o.who))])
              break
            case "register":
              c.block(BEACON, [registerTx(people[o.who]!, beaconNonce(o.who))])
              break
            case "unbond":
              c.block(BEACON, [unbondTx(keyOf(o.who), beaconNonce(o.who), o.who < 4 ? FEE : 0n)])
              break
            case "beacon":
              c.block(BEACON) // Chain.block checks every election's members
              break
            case "relay":
              for (const shard of [1, 2] as unknown as ReadonlyArray<ShardId>) c.block(shard)
              break
          }
        }
        // state rebuilt from the events equals the decided state, on every shard
        for (const shard of SHARD_IDS) {
          const ledger = makeLedger(shard)
          expect(fullView(fold(ledger.evolve, ledger.initialState, c.events.get(shard)!))).toEqual(fullView(c.state(shard)))
        }
        // stake = beacon balance (+ genesis stake) for every registered validator
        for (const [address, v] of c.beacon.registry) expect(v.stake).toBe(v.genesisStake + balanceOf(c.beacon, address))
        // conservation: the shards' balances + burned + in flight = what genesis funded
        expect(c.held()).toBe(c.funded())
        const inFlight = [...c.inFlight.values()].flat().reduce((s, r) => s + r.amount, 0n)
        let balances = 0n
        let burned = 0n
        for (const s of c.states.values()) {
          balances += s.totals.balances
          burned += s.totals.burned
        }
        expect(balances + burned + inFlight).toBe(c.funded())
        elections += c.elections
      }),
      { numRuns: 12, seed: 20240611 }
    )
    expect(elections).toBeGreaterThan(0)
  }, 120_000)
})

// keep ShardCommittee's type import used for readers of this file
export type { ShardCommittee }
