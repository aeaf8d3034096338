/**
 * `topai node start --config FILE`: one validator of a BFT chain as its own
 * process, reaching its peers over the WebSocket consensus network
 * (`infra/network/WsConsensusNetwork.ts`).
 *
 * FILE is JSON (relative paths are relative to FILE's directory):
 *
 *   {
 *     "validator": 0,                        // this node's seat: its index in the genesis validators
 *     "keyFile": "validator-0.key.json",     // {"secp256k1": "0x…32 bytes", "bls": "0x…32 bytes"}, mode 0600 (refused if group or others can use it)
 *                                            //   or "devKeys": true (the public devnet keys; tests only)
 *     "dataDir": "data/validator-0",
 *     "rpc": { "host": "127.0.0.1", "port": 8645 },
 *     "consensus": { "host": "127.0.0.1", "port": 9645 },
 *     "peers": [ { "validator": 1, "url": "ws://127.0.0.1:9646/consensus",
 *                  "rpc": "ws://127.0.0.1:8646/ws" }, … ],   // rpc optional: where to fetch uploaded weights
 *     "candidates": [ "0x…address" ],        // optional: nodes beyond the genesis validators, ids
 *                                            //   from the validator count on; they observe until elected
 *     "genesis": "genesis.json",             // the chain's shared genesis, with its validators
 *     "idleIntervalMs": 1000,                // optional: a transfer shard's idle block interval
 *     "baseTimeoutMs": 3000                  // optional: the pacemaker's first view timeout
 *   }
 *
 * The validator's secp256k1 key signs its consensus frames (its address must
 * be its genesis entry's); its BLS key signs votes (its public key must be
 * the genesis entry's: checked with a proof of possession); a candidate's
 * secp256k1 address must be its `candidates` entry, and its BLS key is the
 * one it registers on the beacon (`topai validator register`). The genesis is
 * copied into the data dir on first start (so `topai audit replay
 * --data-dir` finds it) and must stay the same afterwards. The node serves
 * the chain's calls (status, accounts, transactions, blocks, events) on its
 * RPC port, and the consensus RPC (frames, `network.stats`) on its
 * consensus port. A genesis validator also runs the AI shard's services and
 * the economy, as a `topai devnet` validator does (`validatorServices.ts`):
 * it verifies and attests models (fetching weights from the peers' `rpc`),
 * is a gateway for inference and compute nodes, and settles the usage it
 * served with its account key.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { readSecretFile, writeSecretFileSync } from "../secretFile.js"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { Console, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import { GenesisConfig, genesisConfigHash } from "../../../domain/chain/genesis.js"
import { TRANSFER_SHARDS_DEFAULT } from "../../../domain/chain/sharding.js"
import { EconomicsConfig } from "../../../domain/economics/config.js"
import { bytesToHex, hexToBytes } from "../../../domain/chain/hex.js"
import { Address, PrivateKey } from "../../../domain/chain/keys.js"
import { devValidatorKeys, devValidators } from "../../../domain/chain/validators.js"
import { proofOfPossession, verifyProofOfPossession } from "../../../domain/consensus/bls.js"
import { SignatureVerifier, SignatureVerifierLive } from "../../../infra/crypto/SignatureVerifier.js"
import { SqliteEventStore } from "../../../infra/eventstore/SqliteEventStore.js"
import { CONSENSUS_PATH, makeWsConsensusNetwork } from "../../../infra/network/WsConsensusNetwork.js"
import { HTTP_PATH, WS_PATH } from "../../api/transport.js"
import { ChainNodeLive } from "../../node/ChainNodeLive.js"
import { checkNodeCounts, DEVNET_CHAIN_ID, EVENTS_FILE, GENESIS_FILE, lockDataDir, NodeConfigError } from "./node.js"
import { runsAiServices, validatorServices } from "./validatorServices.js"

const Port = Schema.Int.pipe(Schema.between(0, 65_535))
const Endpoint = Schema.Struct({ host: Schema.String, port: Port })
const Seat = Schema.Int.pipe(Schema.nonNegative())
const Ms = Schema.Int.pipe(Schema.positive())

export const ValidatorConfig = Schema.Struct({
  validator: Seat,
  keyFile: Schema.optionalWith(Schema.String, { exact: true }),
  devKeys: Schema.optionalWith(Schema.Boolean, { exact: true }),
  dataDir: Schema.String,
  rpc: Endpoint,
  consensus: Endpoint,
  peers: Schema.Array(
    Schema.Struct({
      validator: Seat,
      url: Schema.String.pipe(Schema.pattern(/^wss?:\/\//)),
      /** The peer's RPC URL: an AI validator fetches weights uploaded to that peer from it. */
      rpc: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^(wss?|https?):\/\//)), { exact: true })
    })
  ),
  candidates: Schema.optionalWith(Schema.Array(Address), { exact: true }),
  genesis: Schema.String,
  idleIntervalMs: Schema.optionalWith(Ms, { exact: true }),
  baseTimeoutMs: Schema.optionalWith(Ms, { exact: true })
})
export type ValidatorConfig = typeof ValidatorConfig.Type

const Hex32 = Schema.String.pipe(Schema.pattern(/^0x[0-9a-f]{64}$/))
export const ValidatorKeyFile = Schema.Struct({ secp256k1: Hex32, bls: Hex32 })

const decodeConfig = Schema.decodeUnknownEither(Schema.parseJson(ValidatorConfig))
const decodeKeyFile = Schema.decodeUnknownEither(Schema.parseJson(ValidatorKeyFile))
const decodeGenesis = Schema.decodeUnknownEither(Schema.parseJson(GenesisConfig))
const encodeGenesis = Schema.encodeSync(Schema.parseJson(GenesisConfig, { space: 2 }))

/** A decoding error as one line: each problem's path and message. */
const problems = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ")

const fail = (detail: string) => Effect.fail(new NodeConfigError({ detail }))

const readText = (file: string, what: string) =>
  Effect.try({
    try: () => readFileSync(file, "utf8"),
    catch: (e) => new NodeConfigError({ detail: `cannot read ${what} ${file}: ${e instanceof Error ? e.message : String(e)}` })
  })

/** Everything a validator process needs, read and checked. */
export const loadValidatorConfig = (configFile: string) =>
  Effect.gen(function* () {
    const file = resolve(configFile)
    const base = dirname(file)
    const at = (p: string) => (isAbsolute(p) ? p : join(base, p))
    const config = decodeConfig(yield* readText(file, "config"))
    if (Either.isLeft(config)) return yield* fail(`${file} is not a validator config: ${problems(config.left)}`)
    const c = config.right
    const genesisFile = at(c.genesis)
    const genesis = decodeGenesis(yield* readText(genesisFile, "genesis"))
    if (Either.isLeft(genesis)) return yield* fail(`${genesisFile} is not a valid genesis: ${problems(genesis.left)}`)
    const g = genesis.right
    const validators = g.validators
    if (validators === undefined || validators.length === 0) return yield* fail(`${genesisFile} names no validators: not a BFT chain`)
    // The network's nodes: the genesis validators, then the candidates.
    const roster = [...validators.map((v) => v.address), ...(c.candidates ?? [])]
    if (new Set(roster).size !== roster.length) return yield* fail("a candidate is already a genesis validator or listed twice")
    if (c.validator >= roster.length) {
      return yield* fail(`validator ${c.validator} is not in the genesis (${validators.length} validators) nor a candidate (${roster.length - validators.length})`)
    }
    for (const p of c.peers) {
      if (p.validator >= roster.length || p.validator === c.validator) {
        return yield* fail(`peer ${p.validator} is not another validator of the genesis or a candidate`)
      }
    }
    // Keys.
    let secp: PrivateKey
    let blsSecret: Uint8Array
    if (c.devKeys === true) {
      const keys = devValidatorKeys(c.validator)
      secp = keys.secp
      blsSecret = keys.bls.secretKey
    } else if (c.keyFile !== undefined) {
      const keyFile = at(c.keyFile)
      const keyText = yield* readSecretFile(keyFile, "key file").pipe(Effect.mapError((e) => new NodeConfigError({ detail: e.message })))
      const keys = decodeKeyFile(keyText)
      if (Either.isLeft(keys)) return yield* fail(`${keyFile} is not a validator key file: ${problems(keys.left)}`)
      const parsed = PrivateKey.fromBytes(Either.getOrThrow(hexToBytes(keys.right.secp256k1, 32)))
      if (Either.isLeft(parsed)) return yield* fail(`${keyFile}: ${parsed.left.message}`)
      secp = parsed.right
      blsSecret = Either.getOrThrow(hexToBytes(keys.right.bls, 32))
    } else {
      return yield* fail(`${file} names neither a keyFile nor devKeys`)
    }
    if (secp.publicKey.address !== roster[c.validator]) {
      return yield* fail(`the secp256k1 key's address ${secp.publicKey.address} is not validator ${c.validator}'s (${roster[c.validator]})`)
    }
    const loaded = { config: c, genesis: g, genesisText: encodeGenesis(g), dataDir: resolve(at(c.dataDir)), secp, blsSecret, roster }
    const entry = validators[c.validator]
    if (entry === undefined) return loaded // a candidate: its BLS key is the one it registers
    const blsOk = yield* Effect.try({
      try: () => verifyProofOfPossession(Either.getOrThrow(hexToBytes(entry.blsPublicKey, 48)), proofOfPossession(blsSecret)),
      catch: () => new NodeConfigError({ detail: "the BLS key is not a valid secret key" })
    })
    if (!blsOk) return yield* fail(`the BLS key is not validator ${c.validator}'s (genesis ${entry.blsPublicKey})`)
    return loaded
  })

/** The genesis in the data dir: written on first start, and the same one ever after. */
const pinGenesis = (dir: string, genesis: GenesisConfig, text: string) =>
  Effect.gen(function* () {
    const file = join(dir, GENESIS_FILE)
    if (existsSync(file)) {
      const held = decodeGenesis(readFileSync(file, "utf8"))
      if (Either.isLeft(held) || encodeGenesis(held.right) !== encodeGenesis(genesis)) {
        return yield* fail(`${dir} holds another chain's genesis than the config's; use a new dataDir`)
      }
      return
    }
    writeFileSync(`${file}.tmp`, text)
    renameSync(`${file}.tmp`, file)
  })

export const startValidator = (configFile: string) =>
  Effect.gen(function* () {
    const v = yield* loadValidatorConfig(configFile)
    const { config: c, genesis } = v
    yield* Effect.try({
      try: () => mkdirSync(v.dataDir, { recursive: true }),
      catch: (e) => new NodeConfigError({ detail: `cannot make ${v.dataDir}: ${String(e)}` })
    })
    yield* lockDataDir(v.dataDir)
    yield* pinGenesis(v.dataDir, genesis, v.genesisText)

    const base = Layer.mergeAll(SignatureVerifierLive, SqliteEventStore.layer({ filename: join(v.dataDir, EVENTS_FILE) }))
    const context = yield* Layer.build(base).pipe(
      Effect.catchTag("EventStoreError", (e) => fail(`${v.dataDir}: ${e.message}`))
    )
    const verifier = yield* SignatureVerifier.pipe(Effect.provide(context))
    const network = yield* makeWsConsensusNetwork({
      chainId: genesis.chainId,
      validators: v.roster.map((address) => ({ address })),
      self: c.validator,
      key: v.secp,
      listen: c.consensus,
      peers: c.peers.map((p) => ({ index: p.validator, url: p.url })),
      verifier
    }).pipe(Effect.mapError((e) => new NodeConfigError({ detail: e.detail })))
    const chain = ChainNodeLive({
      genesis,
      bft: {
        network,
        roster: v.roster,
        blsSecretKey: v.blsSecret,
        ...(c.idleIntervalMs === undefined ? {} : { idleIntervalMs: c.idleIntervalMs }),
        ...(c.baseTimeoutMs === undefined ? {} : { baseTimeoutMs: c.baseTimeoutMs })
      }
    })
    const services = validatorServices({
      genesis,
      seat: c.validator,
      dataDir: v.dataDir,
      accountKey: v.secp,
      rpc: c.rpc,
      // The other AI validators' RPC: where weights uploaded to them are fetched.
      aiPeers: c.peers.flatMap((p) => (p.rpc !== undefined && runsAiServices(genesis, p.validator) ? [p.rpc] : [])),
      chain
    })
    yield* Layer.build(services.pipe(Layer.provide(Layer.succeedContext(context)))).pipe(
      Effect.catchTag("ServeError", (e) => fail(`cannot serve RPC on ${c.rpc.host}:${c.rpc.port}: ${String(e.cause)}`))
    )
    yield* Effect.logInfo(
      [
        `topai validator ${c.validator} of ${genesis.validators!.length} ready: chain ${genesis.chainId}, ${genesis.transferShards} transfer shards + beacon + AI shard, data ${v.dataDir}`,
        `  RPC        ws://${c.rpc.host}:${c.rpc.port}${WS_PATH}   http://${c.rpc.host}:${c.rpc.port}${HTTP_PATH}${runsAiServices(genesis, c.validator) ? "   (+ AI shard, economy)" : ""}`,
        `  consensus  ${network.url}  (peers: ${c.peers.map((p) => `${p.validator}=${p.url}`).join(", ")})`,
        "  Ctrl-C stops; a restart with the same config resumes"
      ].join("\n")
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)

/**
 * Config files for `count` validators (tests, benches, `topai node
 * configs`): `genesis.json`, `validator-{i}.key.json` and `validator-{i}.json`
 * in `dir`, each validator's data dir `dir/validator-{i}`. Validator i is
 * reached at `host` with `{i}` replaced by i (one machine: 127.0.0.1; one
 * container each: e.g. `validator-{i}`) and listens on `listen` (default:
 * its host). Keys are the public devnet keys (`devValidatorKeys`): never
 * for a real chain.
 */
export const writeLocalValidatorConfigs = (o: {
  readonly dir: string
  readonly genesis: GenesisConfig
  readonly rpcPorts: ReadonlyArray<number>
  readonly consensusPorts: ReadonlyArray<number>
  readonly host?: string | undefined
  readonly listen?: string | undefined
  readonly idleIntervalMs?: number | undefined
  readonly baseTimeoutMs?: number | undefined
  /** Nodes beyond the genesis validators (the next dev keys), with configs of their own. */
  readonly candidates?: number | undefined
}): ReadonlyArray<string> => {
  const hostOf = (i: number) => (o.host ?? "127.0.0.1").replaceAll("{i}", String(i))
  const validators = o.genesis.validators?.length ?? 0
  const count = validators + (o.candidates ?? 0)
  const candidates = devValidators(count).slice(validators).map((v) => v.address)
  mkdirSync(o.dir, { recursive: true })
  writeFileSync(join(o.dir, "genesis.json"), encodeGenesis(o.genesis))
  return Array.from({ length: count }, (_, i) => {
    const keys = devValidatorKeys(i)
    writeSecretFileSync(
      join(o.dir, `validator-${i}.key.json`),
      JSON.stringify({ secp256k1: bytesToHex(keys.secp.exportBytes()), bls: bytesToHex(keys.bls.secretKey) })
    )
    const listen = o.listen ?? hostOf(i)
    const config: ValidatorConfig = {
      validator: i,
      keyFile: `validator-${i}.key.json`,
      dataDir: `validator-${i}`,
      rpc: { host: listen, port: o.rpcPorts[i]! },
      consensus: { host: listen, port: o.consensusPorts[i]! },
      peers: Array.from({ length: count }, (_, j) => j)
        .filter((j) => j !== i)
        .map((j) => ({
          validator: j,
          url: `ws://${hostOf(j)}:${o.consensusPorts[j]}${CONSENSUS_PATH}`,
          rpc: `ws://${hostOf(j)}:${o.rpcPorts[j]}${WS_PATH}`
        })),
      genesis: "genesis.json",
      ...(candidates.length === 0 ? {} : { candidates }),
      ...(o.idleIntervalMs === undefined ? {} : { idleIntervalMs: o.idleIntervalMs }),
      ...(o.baseTimeoutMs === undefined ? {} : { baseTimeoutMs: o.baseTimeoutMs })
    }
    const file = join(o.dir, `validator-${i}.json`)
    writeFileSync(file, JSON.stringify(config, null, 2))
    return file
  })
}

/**
 * `topai node configs --dir DIR --validators N`: a new BFT devnet's genesis
 * (the dev validators, stamped now) and one config per validator, RPC on
 * rpc-port + i and consensus on consensus-port + i; then start each with
 * `topai node start --config DIR/validator-{i}.json`.
 */
export const writeDevnetConfigs = (o: {
  readonly dir: string
  readonly validators: number
  readonly candidates: number
  readonly shards: Option.Option<number>
  readonly host: string
  /** The interface each validator listens on (default: its host). */
  readonly listen?: Option.Option<string> | undefined
  /** A dir that already holds a genesis is kept as it is (a container's start runs this every time). */
  readonly ifAbsent?: boolean | undefined
  readonly rpcPort: number
  readonly consensusPort: number
  readonly beaconIntervalMs: Option.Option<number>
}) =>
  Effect.gen(function* () {
    yield* checkNodeCounts(o.validators, o.candidates)
    const dir = resolve(o.dir)
    if (existsSync(join(dir, "genesis.json"))) {
      if (o.ifAbsent === true) return yield* Console.log(`${dir} already holds a genesis and its configs: kept`)
      return yield* fail(`${dir} already holds a genesis; use a new --dir`)
    }
    const genesis = yield* Effect.try({
      try: () => {
        const base = new GenesisConfig({
          chainId: DEVNET_CHAIN_ID,
          transferShards: Option.getOrElse(o.shards, () => TRANSFER_SHARDS_DEFAULT),
          timestamp: Date.now(),
          validators: devValidators(o.validators)
        })
        return new GenesisConfig({
          ...base,
          economics: new EconomicsConfig({
            ...base.economics,
            ...(Option.isSome(o.beaconIntervalMs) ? { beaconIntervalMs: o.beaconIntervalMs.value } : {})
          })
        })
      },
      catch: (e) => new NodeConfigError({ detail: `bad genesis settings: ${e instanceof Error ? e.message : String(e)}` })
    })
    const ports = (first: number) => Array.from({ length: o.validators + o.candidates }, (_, i) => first + i)
    const files = yield* Effect.try({
      try: () =>
        writeLocalValidatorConfigs({
          dir,
          genesis,
          host: o.host,
          listen: Option.getOrUndefined(o.listen ?? Option.none()),
          rpcPorts: ports(o.rpcPort),
          consensusPorts: ports(o.consensusPort),
          candidates: o.candidates
        }),
      catch: (e) => new NodeConfigError({ detail: `cannot write to ${dir}: ${e instanceof Error ? e.message : String(e)}` })
    })
    yield* Console.log(
      [
        `${o.validators} validator${o.candidates > 0 ? ` and ${o.candidates} candidate` : ""} configs for chain ${genesis.chainId} (${genesis.transferShards} transfer shards + beacon + AI shard) in ${dir}; start each:`,
        ...files.map((f) => `  topai node start --config ${f}`),
        "The keys are the public devnet keys: for a devnet only.",
        `Genesis hash ${genesisConfigHash(genesis)}: audit a node's data dir with \`topai audit replay --data-dir D --genesis-hash ${genesisConfigHash(genesis)}\``
      ].join("\n")
    )
  })
