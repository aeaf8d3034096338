/**
 * Fixtures for the consensus tests: a committee with keys, each member's
 * config, certificates signed by chosen members, and a perfect network that
 * delivers every output in order (the simulator is the imperfect one).
 */
import { Either } from "effect"
import type { Hash32 } from "../../domain/chain/hash.js"
import type { ShardId } from "../../domain/chain/sharding.js"
import { type Committee, makeCommittee } from "../../domain/consensus/committee.js"
import { makeBlock, timeoutDigest, voteDigest } from "../../domain/consensus/digests.js"
import { assembleCertificate, assembleTimeoutCertificate, type QuorumCrypto } from "../../domain/consensus/quorum.js"
import { type ConsensusConfig, type ConsensusState, genesisBlock, initialState } from "../../domain/consensus/state.js"
import { step } from "../../domain/consensus/step.js"
import type {
  Block,
  Input,
  Message,
  NodeIndex,
  Output,
  QuorumCertificate,
  SafetyRecord,
  TimeoutCertificate,
  TxId
} from "../../domain/consensus/types.js"
import { MacKeyring, macKeyFromSeed, macQuorumCrypto } from "../simulation/macCrypto.js"

export const SHARD = 1 as ShardId
export const BASE_TIMEOUT_MS = 100
export const BACKOFF_EXPONENT_MAX = 4

export interface Fixture {
  readonly committee: Committee
  readonly crypto: QuorumCrypto
  readonly secrets: ReadonlyArray<Uint8Array>
  readonly configs: ReadonlyArray<ConsensusConfig>
  readonly genesis: Block
}

/** A committee of `stakes.length` members on the keyed-sha256 scheme (the BLS one is tested in quorum.test.ts). */
export const fixture = (stakes: ReadonlyArray<bigint> = [1n, 1n, 1n, 1n]): Fixture => {
  const keyring = new MacKeyring()
  const crypto = macQuorumCrypto(keyring)
  const keys = stakes.map((_, i) => macKeyFromSeed(`test/${i}`))
  for (const k of keys) keyring.add(k)
  const committee = Either.getOrThrow(
    makeCommittee(
      SHARD,
      0,
      stakes.map((stake, i) => ({ validator: `v${i}`, stake, publicKey: keys[i]!.publicKey }))
    )
  )
  const verifier = Either.getOrThrow(crypto.verifierFor(keys.map((k) => k.publicKey)))
  const genesis = genesisBlock(committee)
  const configs = keys.map(
    (k, self): ConsensusConfig => ({
      committee,
      self,
      secretKey: k.secretKey,
      crypto,
      verifier,
      genesis,
      timing: { baseTimeoutMs: BASE_TIMEOUT_MS, backoffExponentMax: BACKOFF_EXPONENT_MAX },
      blockTxsMax: 100,
      syncBlocksMax: 16,
      detachedBlocksMax: 64
    })
  )
  return { committee, crypto, secrets: keys.map((k) => k.secretKey), configs, genesis }
}

export const qcOf = (f: Fixture, block: Block, signers: ReadonlyArray<NodeIndex> = allOf(f)): QuorumCertificate => {
  const digest = voteDigest(SHARD, 0, block.view, block.hash)
  const partials = signers.map((i) => ({ signer: i, signature: f.crypto.sign(f.secrets[i]!, digest) }))
  const cert = Either.getOrThrow(assembleCertificate(f.committee, f.configs[0]!.verifier, digest, partials))
  return { view: block.view, blockHash: block.hash, ...cert }
}

/** A TC for `view`; signer i reports `highQcViews[i]` (default 0) as the view of its highest QC. */
export const tcOf = (
  f: Fixture,
  view: number,
  signers: ReadonlyArray<NodeIndex> = allOf(f),
  highQcViews: ReadonlyArray<number> = []
): TimeoutCertificate => {
  const partials = signers.map((i) => {
    const highQcView = highQcViews[i] ?? 0
    return { signer: i, highQcView, signature: f.crypto.sign(f.secrets[i]!, timeoutDigest(SHARD, 0, view, highQcView)) }
  })
  return Either.getOrThrow(assembleTimeoutCertificate(f.committee, f.configs[0]!.verifier, view, partials))
}

export const allOf = (f: Fixture): ReadonlyArray<NodeIndex> => f.committee.members.map((_, i) => i)

export const genesisQcOf = (f: Fixture): QuorumCertificate => initialState(f.configs[0]!).highQc

/** The block the leader of `view` would propose on top of `parent`, certified by `justify`. */
export const blockOn = (
  f: Fixture,
  parent: Block,
  justify: QuorumCertificate,
  view: number,
  payload: ReadonlyArray<TxId> = []
): Block =>
  makeBlock({
    shard: SHARD,
    epoch: 0,
    view,
    height: parent.height + 1,
    parentHash: parent.hash as Hash32,
    justify,
    proposer: view % f.committee.members.length,
    payload
  })

/** One node driven by hand: feed inputs, read outputs, keep its persisted records. */
export class Driven {
  state: ConsensusState
  readonly log: Array<SafetyRecord> = []
  constructor(readonly config: ConsensusConfig, state?: ConsensusState) {
    this.state = state ?? initialState(config)
  }
  feed(input: Input): ReadonlyArray<Output> {
    const result = step(this.config, this.state, input)
    this.state = result.state
    for (const o of result.outputs) if (o._tag === "Persist") this.log.push(o.record)
    return result.outputs
  }
  receive(from: NodeIndex, message: Message): ReadonlyArray<Output> {
    return this.feed({ _tag: "Received", from, message })
  }
}

export const votesIn = (outputs: ReadonlyArray<Output>): ReadonlyArray<Message> =>
  outputs.flatMap((o) => (o._tag === "Send" && o.message._tag === "Vote" ? [o.message] : []))

export const timersIn = (outputs: ReadonlyArray<Output>): ReadonlyArray<{ view: number; durationMs: number }> =>
  outputs.flatMap((o) => (o._tag === "SetTimer" ? [{ view: o.view, durationMs: o.durationMs }] : []))

export const commitsIn = (outputs: ReadonlyArray<Output>): ReadonlyArray<Block> =>
  outputs.flatMap((o) => (o._tag === "Commit" ? [o.block] : []))

/**
 * Every node on a perfect network: outputs are delivered in the order they
 * were produced, timers never fire. Returns each node's commits.
 */
export const runPerfectNetwork = (
  f: Fixture,
  options: { readonly deliveriesMax: number; readonly payload?: ReadonlyArray<TxId> }
): { readonly nodes: ReadonlyArray<Driven>; readonly commits: ReadonlyArray<Array<Block>> } => {
  const nodes = f.configs.map((c) => new Driven(c))
  const commits = nodes.map((): Array<Block> => [])
  const queue: Array<{ readonly to: NodeIndex; readonly input: Input }> = []
  const carry = (from: NodeIndex, outputs: ReadonlyArray<Output>): void => {
    for (const o of outputs) {
      if (o._tag === "Send") queue.push({ to: o.to, input: { _tag: "Received", from, message: o.message } })
      else if (o._tag === "Broadcast") {
        for (const n of nodes) if (n.config.self !== from) queue.push({ to: n.config.self, input: { _tag: "Received", from, message: o.message } })
      } else if (o._tag === "RequestBlock") {
        queue.push({ to: o.from, input: { _tag: "Received", from, message: { _tag: "BlockRequest", blockHash: o.blockHash } } })
      } else if (o._tag === "Commit") commits[from]!.push(o.block)
    }
  }
  if (options.payload !== undefined) for (const n of nodes) n.feed({ _tag: "NewPayload", txs: options.payload })
  for (const n of nodes) carry(n.config.self, n.feed({ _tag: "Start" }))
  for (let i = 0; i < options.deliveriesMax && queue.length > 0; i++) {
    const { to, input } = queue.shift()!
    carry(to, nodes[to]!.feed(input))
  }
  return { nodes, commits }
}
