/** Shared fixtures for the chain tests: a devnet genesis, signed transfers, blocks, given/when/then. */
import { Either } from "effect"
import { expect } from "vitest"
import { fold, type Decider } from "../../domain/Decider.js"
import { buildBlock, type Block } from "../../domain/chain/block.js"
import { devAccounts, GenesisConfig, genesisCommand, transferShardIds } from "../../domain/chain/genesis.js"
import { devProposerKey, type Address, type PrivateKey } from "../../domain/chain/keys.js"
import { ApplyBlock, makeLedger, type LedgerCommand, type LedgerError, type LedgerState } from "../../domain/chain/ledger.js"
import type { CrossShardReceipt } from "../../domain/chain/receipt.js"
import { shardOf, type ShardId } from "../../domain/chain/sharding.js"
import { signTransaction, Transaction, TransactionBody } from "../../domain/chain/transaction.js"
import type { ShardEvent } from "../../domain/chain/events.js"

export const CHAIN_ID = 7777n
export const GENESIS_TIME = 1_700_000_000_000
export const BLOCK_INTERVAL_MS = 1_000
export const DEV_BALANCE = 1_000_000n
export const FEE = 10n

export const config = new GenesisConfig({ chainId: CHAIN_ID, timestamp: GENESIS_TIME, devAccountCount: 24, devBalance: DEV_BALANCE })
export const SHARDS = transferShardIds(config)
export const dev = devAccounts(config)
export const accountsOn = (shard: ShardId) => dev.filter((d) => shardOf(d.address, config.transferShards) === shard)
export const homeOf = (address: Address): ShardId => shardOf(address, config.transferShards)

export interface TransferParams {
  readonly to: Address
  readonly amount: bigint
  readonly nonce: bigint
  readonly fee?: bigint
  readonly chainId?: bigint
}

export const transfer = (key: PrivateKey, p: TransferParams): Transaction =>
  signTransaction(
    new TransactionBody({
      chainId: p.chainId ?? CHAIN_ID,
      nonce: p.nonce,
      fee: p.fee ?? FEE,
      payload: { kind: "transfer", to: p.to, amount: p.amount }
    }),
    key
  )

/** Decide, then fold: the new state and the events; fails the test on an error. */
export const run = (
  decider: Decider<LedgerState, LedgerCommand, ShardEvent, LedgerError>,
  state: LedgerState,
  cmd: LedgerCommand
): { readonly state: LedgerState; readonly events: ReadonlyArray<ShardEvent> } => {
  const r = decider.decide(state, cmd)
  if (Either.isLeft(r)) throw new Error(`unexpected ${r.left._tag}: ${r.left.message}`)
  return { state: fold(decider.evolve, state, r.right), events: r.right }
}

export const genesisState = (shard: ShardId) => {
  const ledger = makeLedger(shard)
  return { ledger, ...run(ledger, ledger.initialState, genesisCommand(config, shard)) }
}

/** The next valid block on top of `state`, signed by the shard's dev proposer. */
export const nextBlock = (
  state: LedgerState,
  txs: ReadonlyArray<Transaction> = [],
  receipts: ReadonlyArray<CrossShardReceipt> = []
): Block =>
  buildBlock({
    chainId: CHAIN_ID,
    shard: state.shard,
    height: state.height + 1,
    parentHash: state.lastBlockHash,
    eventsRoot: state.lastEventsRoot,
    timestamp: state.lastTimestamp + BLOCK_INTERVAL_MS,
    transactions: txs,
    receipts,
    proposerKey: devProposerKey(state.shard)
  })

export const applyBlock = (state: LedgerState, block: Block) => run(makeLedger(state.shard), state, new ApplyBlock({ block }))

/** Emmett-style given / when / then over a decider. */
export const deciderSpec = <S, C, E, Err extends { readonly _tag: string }>(decider: Decider<S, C, E, Err>) => ({
  given: (events: ReadonlyArray<E>) => ({
    when: (command: C) => {
      const result = decider.decide(fold(decider.evolve, decider.initialState, events), command)
      return {
        then: (check: (events: ReadonlyArray<E>) => void) => {
          if (Either.isLeft(result)) throw new Error(`expected events, got ${result.left._tag}`)
          check(result.right)
        },
        thenFails: (check: (error: Err) => void) => {
          if (Either.isRight(result)) throw new Error(`expected an error, got ${result.right.length} events`)
          check(result.left)
        }
      }
    }
  })
})

export const tags = (events: ReadonlyArray<{ readonly _tag: string }>) => events.map((e) => e._tag)
export { expect }

/** A plain, comparable picture of a ledger state. */
export const snapshot = (s: LedgerState) => ({
  shard: s.shard,
  chain: s.chain,
  height: s.height,
  lastBlockHash: s.lastBlockHash,
  lastEventsRoot: s.lastEventsRoot,
  lastTimestamp: s.lastTimestamp,
  accounts: Array.from(s.accounts, ([a, acc]) => [a, acc.balance, acc.nonce] as const).sort((x, y) => (x[0] < y[0] ? -1 : 1)),
  received: Array.from(s.receivedReceipts).sort(),
  totals: s.totals
})

export const sumBalances = (s: LedgerState): bigint => {
  let sum = 0n
  for (const [, acc] of s.accounts) sum += acc.balance
  return sum
}
