/**
 * A shard ledger's state and how each event changes it (`evolve`). Evolve
 * asserts the ledger's invariants on every event — balances never negative,
 * each nonce used once and in order, each receipt credited once, and
 * conservation: balances + burned + sentOut = funded + receivedIn — so a
 * corrupt stream stops a replay instead of yielding a wrong state.
 */
import { Data, HashMap, HashSet, Option } from "effect"
import type { ShardEvent } from "./events.js"
import { ZERO_HASH, type Hash32 } from "./hash.js"
import type { Address } from "./keys.js"
import { EMPTY_ROOT } from "./merkle.js"
import { BEACON_SHARD, chainShardIds, shardKindOf, type ShardId } from "./sharding.js"
import type { GenesisValidator } from "./validators.js"
import type { ChainContext } from "./txRules.js"
import { invariantsOf, type Assert } from "../assert.js"
import { consensusGenesisHash, epochGenesisHash } from "./certification.js"
import { genesisCommittee, type ShardCommittee } from "./committees.js"
import { initialAiLedgerState, type AiLedgerState } from "../ai/ledger/state.js"
import { evolveAi } from "../ai/ledger/evolve.js"

const firstCommittee = (committee: ShardCommittee) => ({
  committee,
  committeeStart: { parentHash: ZERO_HASH, height: 0 },
  lastCertifiedHash: consensusGenesisHash(committee)
})

export const GENESIS_HEIGHT = 0

/**
 * A validator in the beacon's registry. Its stake is its beacon balance, plus
 * the stake the genesis declared for it (a genesis validator's; 0 for one
 * that registered on chain). `stake` is kept equal to that sum on every
 * event that moves its beacon balance.
 */
export class RegisteredValidator extends Data.Class<{
  readonly blsPublicKey: string
  /** Where it serves (ws://host:port); null for a genesis validator that never registered one. */
  readonly endpoint: string | null
  readonly genesisStake: bigint
  readonly stake: bigint
  /** It sent `validator.unbond`: it leaves the registry at the next epoch end. */
  readonly leaving: boolean
  /** The unbond transaction while leaving (its hash names the payback receipt), else null. */
  readonly unbondTx: Hash32 | null
}> {}

export class Account extends Data.Class<{ readonly balance: bigint; readonly nonce: bigint }> {}
export const EMPTY_ACCOUNT = new Account({ balance: 0n, nonce: 0n })

/** Running sums; conservation: balances + burned + sentOut = funded + receivedIn, always. */
export interface LedgerTotals {
  readonly funded: bigint
  readonly balances: bigint
  readonly burned: bigint
  readonly sentOut: bigint
  readonly receivedIn: bigint
}

export interface LedgerState {
  readonly shard: ShardId
  /** Null until `GenesisApplied`. */
  readonly chain: ChainContext | null
  readonly height: number
  readonly lastBlockHash: Hash32
  /** Root of the events of the last executed block: the next header's eventsRoot. */
  readonly lastEventsRoot: Hash32
  readonly lastTimestamp: number
  readonly accounts: HashMap.HashMap<Address, Account>
  readonly receivedReceipts: HashSet.HashSet<Hash32>
  readonly totals: LedgerTotals
  /** The beacon's epoch in progress (epochs ended so far); 0 on transfer shards. */
  readonly epoch: number
  /** When the epoch in progress began: genesis time, then each `EpochEnded`'s endAt. */
  readonly epochStartAt: number
  /** A BFT chain's last certified consensus block (the consensus genesis' until block 1); null on a single-producer chain. */
  readonly lastCertifiedHash: Hash32 | null
  /** A BFT chain's committee that certifies the next block (genesis validators in epoch 0, then each handover's); null on a single-producer chain. */
  readonly committee: ShardCommittee | null
  /** Where that committee's consensus chain starts (`epochGenesisBlock`): the handover block's consensus hash and height; null with `committee`. */
  readonly committeeStart: { readonly parentHash: Hash32; readonly height: number } | null
  /** The beacon's validator registry on a chain with validators; empty elsewhere. */
  readonly registry: HashMap.HashMap<Address, RegisteredValidator>
  /** The beacon's committees per epoch (epoch 0: the genesis validators, every shard); empty elsewhere. */
  readonly elections: HashMap.HashMap<number, ReadonlyArray<ShardCommittee>>
  /** The AI shard's ledger (escrow, models, workers, settled usage, the economy: domain/ai/ledger); null on other shards. */
  readonly ai: AiLedgerState | null
}

export const initialLedgerState = (shard: ShardId): LedgerState => ({
  shard,
  chain: null,
  height: GENESIS_HEIGHT,
  lastBlockHash: ZERO_HASH,
  lastEventsRoot: EMPTY_ROOT,
  lastTimestamp: 0,
  accounts: HashMap.empty(),
  receivedReceipts: HashSet.empty(),
  totals: { funded: 0n, balances: 0n, burned: 0n, sentOut: 0n, receivedIn: 0n },
  epoch: 0,
  epochStartAt: 0,
  lastCertifiedHash: null,
  committee: null,
  committeeStart: null,
  registry: HashMap.empty(),
  elections: HashMap.empty(),
  ai: null
})

export const accountOf = (state: LedgerState, address: Address): Account =>
  Option.getOrElse(HashMap.get(state.accounts, address), () => EMPTY_ACCOUNT)

export const balanceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).balance
export const nonceOf = (state: LedgerState, address: Address): bigint => accountOf(state, address).nonce

/** The committee the beacon elected for `shard` in `epoch`, if it has (epoch 0 is genesis'). */
export const electedCommittee = (beaconState: LedgerState, epoch: number, shard: ShardId): ShardCommittee | undefined =>
  Option.getOrUndefined(HashMap.get(beaconState.elections, epoch))?.find((c) => c.shard === shard)

/** The registry entry of `address` on the beacon, if it is a validator. */
export const registeredValidator = (beaconState: LedgerState, address: Address): RegisteredValidator | undefined =>
  Option.getOrUndefined(HashMap.get(beaconState.registry, address))

const assert: Assert = invariantsOf("ledger")

/** Keeps a registered validator's stake equal to its genesis stake plus its beacon balance. */
const syncStake = (s: LedgerState, address: Address): LedgerState => {
  const v = registeredValidator(s, address)
  if (v === undefined) return s
  const stake = v.genesisStake + balanceOf(s, address)
  return stake === v.stake ? s : { ...s, registry: HashMap.set(s.registry, address, new RegisteredValidator({ ...v, stake })) }
}

const withAccount = (s: LedgerState, address: Address, f: (a: Account) => Account): LedgerState => ({
  ...s,
  accounts: HashMap.set(s.accounts, address, f(accountOf(s, address)))
})

const credit = (s: LedgerState, address: Address, amount: bigint): LedgerState =>
  withAccount(s, address, (a) => new Account({ balance: a.balance + amount, nonce: a.nonce }))

const debit = (s: LedgerState, address: Address, amount: bigint): LedgerState =>
  withAccount(s, address, (a) => {
    assert(a.balance >= amount, `debit of ${amount} from ${address} holding ${a.balance}`)
    return new Account({ balance: a.balance - amount, nonce: a.nonce })
  })

const withTotals = (s: LedgerState, delta: Partial<LedgerTotals>): LedgerState => {
  const t = s.totals
  const totals: LedgerTotals = {
    funded: t.funded + (delta.funded ?? 0n),
    balances: t.balances + (delta.balances ?? 0n),
    burned: t.burned + (delta.burned ?? 0n),
    sentOut: t.sentOut + (delta.sentOut ?? 0n),
    receivedIn: t.receivedIn + (delta.receivedIn ?? 0n)
  }
  assert(totals.balances + totals.burned + totals.sentOut === totals.funded + totals.receivedIn, "conservation")
  return { ...s, totals }
}

/** A BFT chain's beacon at genesis: every genesis validator registered with its declared stake; epoch 0's committees. */
const beaconGenesisOf = (
  validators: ReadonlyArray<GenesisValidator>,
  transferShards: number
): Pick<LedgerState, "registry" | "elections"> => ({
  registry: HashMap.fromIterable(
    validators.map((v) => [
      v.address,
      new RegisteredValidator({
        blsPublicKey: v.blsPublicKey,
        endpoint: null,
        genesisStake: v.stake,
        stake: v.stake,
        leaving: false,
        unbondTx: null
      })
    ] as const)
  ),
  elections: HashMap.make([
    0,
    chainShardIds(transferShards).map((shard) => genesisCommittee(validators, shard))
  ] as const)
})

export const evolve = (s: LedgerState, e: ShardEvent): LedgerState => {
  switch (e._tag) {
    case "GenesisApplied":
      assert(s.chain === null, "genesis applied twice")
      assert(e.shard === s.shard, `genesis of shard ${e.shard} on shard ${s.shard}`)
      return {
        ...s,
        chain: {
          chainId: e.chainId,
          shard: e.shard,
          kind: shardKindOf(e.shard, e.transferShards),
          transferShards: e.transferShards,
          governance: e.governance ?? null,
          epochBlocks: e.epochBlocks ?? null,
          validators: e.validators ?? null,
          committeeSize: e.validators !== undefined && e.shard === BEACON_SHARD ? (e.committeeSize ?? e.validators.length) : null,
          ai: e.ai ?? null
        },
        epochStartAt: e.timestamp,
        ai: e.ai === undefined ? null : initialAiLedgerState(e.ai.economics),
        ...(e.validators === undefined ? {} : firstCommittee(genesisCommittee(e.validators, e.shard))),
        ...(e.validators !== undefined && e.shard === BEACON_SHARD ? beaconGenesisOf(e.validators, e.transferShards) : {})
      }
    case "AccountFunded":
      return withTotals(credit(s, e.address, e.amount), { funded: e.amount, balances: e.amount })
    case "BlockApplied":
      assert(e.block.header.height === s.height + 1, `block ${e.block.header.height} after ${s.height}`)
      if (e.block.certificate === undefined) return s
      if (e.block.committee !== undefined) {
        // The handover: the next block is the new committee's, on its consensus genesis.
        const { committee } = e.block
        const start = { parentHash: e.block.certificate.blockHash, height: e.block.header.height }
        return { ...s, committee, committeeStart: start, lastCertifiedHash: epochGenesisHash(committee, start.parentHash, start.height) }
      }
      return { ...s, lastCertifiedHash: e.block.certificate.blockHash }
    case "Transferred":
      return syncStake(syncStake(credit(debit(s, e.from, e.amount), e.to, e.amount), e.from), e.to)
    case "FeeCharged": {
      const payer = accountOf(s, e.payer)
      assert(payer.nonce === e.nonce, `fee for nonce ${e.nonce} of ${e.payer} at nonce ${payer.nonce}`)
      assert(payer.balance >= e.fee, `fee ${e.fee} from ${e.payer} holding ${payer.balance}`)
      const next = withAccount(s, e.payer, (a) => new Account({ balance: a.balance - e.fee, nonce: a.nonce + 1n }))
      return syncStake(withTotals(next, { balances: -e.fee, burned: e.fee }), e.payer)
    }
    case "CrossShardSent":
      assert(e.sourceShard === s.shard && e.destShard !== s.shard, "cross-shard send between the wrong shards")
      if (e.amount === 0n) return s // an epoch receipt: no money, no account touched
      return syncStake(withTotals(debit(s, e.from, e.amount), { balances: -e.amount, sentOut: e.amount }), e.from)
    case "CrossShardReceived": {
      assert(e.destShard === s.shard, `receipt for shard ${e.destShard} on shard ${s.shard}`)
      assert(!HashSet.has(s.receivedReceipts, e.receiptId), `receipt ${e.receiptId} credited twice`)
      if (e.amount === 0n) return { ...s, receivedReceipts: HashSet.add(s.receivedReceipts, e.receiptId) } // an epoch receipt: no account touched
      const next = { ...credit(s, e.to, e.amount), receivedReceipts: HashSet.add(s.receivedReceipts, e.receiptId) }
      return syncStake(withTotals(next, { balances: e.amount, receivedIn: e.amount }), e.to)
    }
    case "ValidatorRegistered": {
      assert(s.chain?.validators != null && s.shard === BEACON_SHARD, `validator registered on shard ${s.shard}`)
      const known = registeredValidator(s, e.validator)
      assert(known === undefined || !known.leaving, `${e.validator} registered while leaving`)
      for (const [address, v] of s.registry) {
        assert(address === e.validator || v.blsPublicKey !== e.blsPublicKey, `key ${e.blsPublicKey} registered twice`)
      }
      const genesisStake = known?.genesisStake ?? 0n
      const entry = new RegisteredValidator({
        blsPublicKey: e.blsPublicKey,
        endpoint: e.endpoint,
        genesisStake,
        stake: genesisStake + balanceOf(s, e.validator),
        leaving: false,
        unbondTx: null
      })
      return { ...s, registry: HashMap.set(s.registry, e.validator, entry) }
    }
    case "ValidatorLeaving": {
      const known = registeredValidator(s, e.validator)
      assert(known !== undefined && !known.leaving, `${e.validator} leaving, not a staying validator`)
      const entry = new RegisteredValidator({ ...known!, leaving: true, unbondTx: e.txHash })
      return { ...s, registry: HashMap.set(s.registry, e.validator, entry) }
    }
    case "ValidatorLeft": {
      const known = registeredValidator(s, e.validator)
      assert(known !== undefined && known.leaving && known.unbondTx === e.txHash, `${e.validator} left without unbonding`)
      assert(balanceOf(s, e.validator) === 0n, `${e.validator} left holding ${balanceOf(s, e.validator)} on the beacon`)
      return { ...s, registry: HashMap.remove(s.registry, e.validator) }
    }
    case "CommitteesElected": {
      assert(s.chain?.validators != null && s.shard === BEACON_SHARD, `committees elected on shard ${s.shard}`)
      assert(e.epoch === s.epoch && !HashMap.has(s.elections, e.epoch), `committees of epoch ${e.epoch} elected in epoch ${s.epoch}`)
      assert(
        // one per shard: the beacon, the transfer shards, the AI shard
        e.committees.length === s.chain!.transferShards + 2 && e.committees.every((c, i) => c.shard === i && c.epoch === e.epoch),
        `committees of epoch ${e.epoch} do not cover every shard in order`
      )
      return { ...s, elections: HashMap.set(s.elections, e.epoch, e.committees) }
    }
    case "TransactionRejected":
    case "EscrowDeposited": // the money moves in the Transferred/CrossShardSent beside it
      return s
    case "EpochEnded": {
      const epochBlocks = s.chain?.epochBlocks ?? null
      assert(epochBlocks !== null, `epoch ended on shard ${s.shard}, which is not the beacon`)
      assert(e.height === s.height + 1 && e.height % epochBlocks === 0, `epoch ended at height ${e.height} after ${s.height}`)
      assert(e.epoch === s.epoch, `epoch ${e.epoch} ended, ${s.epoch} was in progress`)
      assert(e.startAt === s.epochStartAt && e.endAt >= e.startAt, `epoch ${e.epoch} from ${e.startAt} to ${e.endAt}`)
      return { ...s, epoch: s.epoch + 1, epochStartAt: e.endAt }
    }
    default:
      // The AI shard's own events (domain/ai/ledger): its ledger evolves by them.
      assert(s.ai !== null, `AI event ${e._tag} on shard ${s.shard}`)
      return { ...s, ai: evolveAi(s.ai!, e) }
    case "BlockExecuted":
      assert(s.chain !== null, "block executed before genesis")
      if (e.height === GENESIS_HEIGHT) assert(s.lastBlockHash === ZERO_HASH, "genesis sealed twice")
      else assert(e.height === s.height + 1, `block ${e.height} sealed after ${s.height}`)
      return {
        ...s,
        height: e.height,
        lastBlockHash: e.blockHash,
        lastEventsRoot: e.eventsRoot,
        lastTimestamp: e.timestamp
      }
  }
}

