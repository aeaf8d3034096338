import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { decodeTransaction, type ResultChallengePayload, type UsageResult } from "../../../domain/chain/transaction.js"
import type { Hash32 } from "../../../domain/chain/hash.js"
import { decodeRlp, encodeRlp, type RlpInput, type RlpItem } from "../../../domain/chain/rlp.js"
import type { PrivateKey } from "../../../domain/chain/keys.js"
import { BURN_ADDRESS } from "../../../domain/economics/accounts.js"
import { bondedOf } from "../../../domain/economics/state.js"
import type { Slashed } from "../../../domain/economics/events.js"
import { decideAi } from "../../../domain/ai/ledger/decide.js"
import { wrongResultProofs, type SignedResult } from "../../../domain/ai/task/wrongResultProofs.js"
import type { AiPayout, AiResultProvenWrong, AiRejectionReason } from "../../../domain/ai/ledger/events.js"
import { evolveAi } from "../../../domain/ai/ledger/evolve.js"
import {
  accept,
  bondReceipt,
  CHAIN,
  ctxAt,
  developer,
  epochReceipt,
  FINGERPRINT,
  gateway,
  grantOf,
  hashOf,
  key,
  owner,
  resultOf,
  signed,
  step,
  tagsOf,
  txIn,
  validators,
  withVerifiedModel,
  withWorkers,
  worker1,
  worker2,
  T0
} from "./support.js"

const worker3 = key("worker-3")
const WRONG = hashOf("wrong fingerprint")

/** Workers 1–3 registered, worker 1 bonded 1_000 by `owner` (and worker 2 by 500). */
const setup = () => {
  const { state, model } = withVerifiedModel()
  const s = accept(
    withWorkers(state),
    ctxAt(3),
    txIn(signed(worker3, { kind: "worker.register", gpuClass: "GPU", devices: 1, endpoint: "ws://w3" })),
    bondReceipt(owner, worker1, 1_000n),
    bondReceipt(owner, worker2, 500n)
  )
  return { state: s, model }
}

/** worker 1 lied (WRONG), workers 2 and 3 agree on FINGERPRINT. */
const challenge = (taskId: Hash32, model: Hash32, over: Partial<ResultChallengePayload> = {}): ResultChallengePayload => ({
  kind: "result.challenge",
  grant: grantOf(developer, { model }),
  taskId,
  model,
  loser: resultOf(worker1, taskId, 400, WRONG),
  winner: resultOf(worker2, taskId, 500),
  referee: resultOf(worker3, taskId, 450),
  ...over
})

const challengeTx = (p: ResultChallengePayload, sender: PrivateKey = gateway) => txIn(signed(sender, p))

const reasonOf = (s: ReturnType<typeof setup>["state"], p: ResultChallengePayload, sender: PrivateKey = gateway): AiRejectionReason | undefined => {
  const d = decideAi(s, ctxAt(10), challengeTx(p, sender))
  return Either.isLeft(d) ? d.left.reason : undefined
}

const provenOf = (events: ReadonlyArray<{ readonly _tag: string }>) => events.filter((e): e is AiResultProvenWrong => e._tag === "AiResultProvenWrong")
const slashesOf = (events: ReadonlyArray<{ readonly _tag: string }>) => events.filter((e): e is Slashed => e._tag === "Slashed")
const stakePoolPayouts = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events
    .filter((e): e is AiPayout => e._tag === "AiPayout")
    .filter((p) => p.source === "stakePool")
    .map((p) => [p.to, p.amount] as const)

describe("result.challenge", () => {
  it("proves worker 1 wrong: AiResultProvenWrong naming the grant's developer and the sending member, at the block's time", () => {
    const { state, model } = setup()
    const task = hashOf("task")
    const r = step(state, ctxAt(10), challengeTx(challenge(task, model)))
    expect(r.rejection).toBeNull()
    expect(tagsOf(r.events)).toEqual(["AiResultProvenWrong"])
    expect(provenOf(r.events)[0]).toMatchObject({
      taskId: task,
      worker: worker1.publicKey.address,
      developer: developer.publicKey.address,
      reporter: gateway.publicKey.address,
      at: T0 + 10_000
    })
    // The slash is fixed now (10 % of the 1_000 bonded) and paid at the close.
    expect(r.state.economy.wrongResults.length).toBe(1)
    expect(bondedOf(r.state.economy, worker1.publicKey.address)).toBe(1_000n)
  })

  it("the slash lands at the epoch close: 100 of 1_000 — 50 to the developer, 20 to the reporter, 30 burned — by stake-pool payouts", () => {
    const { state, model } = setup()
    const s = accept(state, ctxAt(10), challengeTx(challenge(hashOf("task"), model)))
    const r = step(s, ctxAt(11), epochReceipt(0, T0, T0 + 100_000))
    expect(r.rejection).toBeNull()
    const [slash, ...others] = slashesOf(r.events)
    expect(others).toEqual([])
    expect(slash).toMatchObject({
      worker: worker1.publicKey.address,
      reason: "WrongResult",
      stakeBefore: 1_000n,
      amount: 100n,
      toUser: 50n,
      user: developer.publicKey.address,
      toReporter: 20n,
      reporter: gateway.publicKey.address,
      burned: 30n,
      taskId: hashOf("task")
    })
    expect(stakePoolPayouts(r.events)).toEqual([
      [developer.publicKey.address, 50n],
      [gateway.publicKey.address, 20n],
      [BURN_ADDRESS, 30n]
    ])
    expect(bondedOf(r.state.economy, worker1.publicKey.address)).toBe(900n)
    expect(bondedOf(r.state.economy, worker2.publicKey.address)).toBe(500n)
    // Exactly once: the next close slashes nothing more.
    const next = step(r.state, ctxAt(12), epochReceipt(1, T0 + 100_000, T0 + 200_000))
    expect(slashesOf(next.events)).toEqual([])
    expect(bondedOf(next.state.economy, worker1.publicKey.address)).toBe(900n)
  })

  it("once per (task, loser): the same proof again, from another member or with other witnesses, is AlreadyChallenged", () => {
    const { state, model } = setup()
    const task = hashOf("task")
    const s = accept(state, ctxAt(10), challengeTx(challenge(task, model)))
    expect(reasonOf(s, challenge(task, model))).toBe("AlreadyChallenged")
    expect(reasonOf(s, challenge(task, model), validators[1])).toBe("AlreadyChallenged")
    expect(reasonOf(s, challenge(task, model, { winner: resultOf(worker3, task), referee: resultOf(worker2, task) }))).toBe("AlreadyChallenged")
    // Another task of the same worker, or another loser of the same task, is a new proof.
    expect(reasonOf(s, challenge(hashOf("task-2"), model, { loser: resultOf(worker1, hashOf("task-2"), 1, WRONG), winner: resultOf(worker2, hashOf("task-2")), referee: resultOf(worker3, hashOf("task-2")) }))).toBeUndefined()
    expect(reasonOf(s, challenge(task, model, { loser: resultOf(worker2, task, 1, WRONG), winner: resultOf(worker1, task), referee: resultOf(worker3, task) }))).toBeUndefined()
  })

  describe("every refusal (a typed reason with a detail; no event)", () => {
    const { state, model } = setup()
    const task = hashOf("task")
    const stranger = key("stranger")
    const cases: ReadonlyArray<readonly [string, AiRejectionReason, ResultChallengePayload, PrivateKey?]> = [
      ["a sender outside the AI committee", "NotCommitteeMember", challenge(task, model), developer],
      ["a grant for another chain", "WrongChain", challenge(task, model, { grant: grantOf(developer, { model, chainId: CHAIN + 1n }) })],
      ["a grant for another model", "WrongModel", challenge(task, model, { grant: grantOf(developer, { model: hashOf("other") }) })],
      ["an unknown model", "UnknownModel", challenge(task, hashOf("other"), { grant: grantOf(developer, { model: hashOf("other") }) })],
      ["the loser as its own winner", "DuplicateWorker", challenge(task, model, { winner: resultOf(worker1, task) })],
      ["the winner as referee", "DuplicateWorker", challenge(task, model, { referee: resultOf(worker2, task, 7) })],
      ["a loser that agrees with the winner", "ResultsAgree", challenge(task, model, { loser: resultOf(worker1, task) })],
      ["a referee that agrees with neither", "WitnessesDisagree", challenge(task, model, { referee: resultOf(worker3, task, 450, hashOf("third")) })],
      ["a referee that agrees with the loser", "WitnessesDisagree", challenge(task, model, { referee: resultOf(worker3, task, 450, WRONG) })],
      ["an unregistered loser", "UnregisteredWorker", challenge(task, model, { loser: resultOf(stranger, task, 1, WRONG) })],
      ["an unregistered referee", "UnregisteredWorker", challenge(task, model, { referee: resultOf(stranger, task) })],
      ["a grant signed by another key", "BadGrantSignature", challenge(task, model, { grant: grantOf(developer, { model }, stranger) })],
      ["a loser's result signed by another key", "BadResultSignature", challenge(task, model, { loser: resultOf(worker1, task, 400, WRONG, worker2) })],
      ["a winner's result for another task", "BadResultSignature", challenge(task, model, { winner: resultOf(worker2, hashOf("elsewhere")) })],
      [
        "a referee's execMs changed after signing",
        "BadResultSignature",
        challenge(task, model, { referee: { ...resultOf(worker3, task, 450), execMs: 451 } satisfies UsageResult })
      ]
    ]
    for (const [what, reason, payload, sender] of cases) {
      it(`${what}: ${reason}`, () => {
        const d = decideAi(state, ctxAt(10), challengeTx(payload, sender))
        expect(Either.isLeft(d) && d.left.reason).toBe(reason)
        expect(Either.isLeft(d) && d.left.detail.length > 0).toBe(true)
      })
    }
  })

  it("travels as canonical RLP: a signed challenge decodes to the same payload; a truncated payload is Malformed", () => {
    const { model } = setup()
    const p = challenge(hashOf("task"), model)
    const tx = signed(gateway, p)
    const back = decodeTransaction(tx.encoded)
    expect(Either.isRight(back) && back.right.body.payload).toEqual(p)
    expect(tx.encoded.length).toBeLessThan(4096)
    // The same transaction with the referee dropped from the payload list: refused before any signature is checked.
    const fields = Either.getOrThrow(decodeRlp(tx.encoded)) as ReadonlyArray<RlpItem>
    const payload = fields[4] as ReadonlyArray<RlpItem>
    const short = decodeTransaction(encodeRlp([...fields.slice(0, 4), payload.slice(0, 5), ...fields.slice(5)] as RlpInput))
    expect(Either.isLeft(short) && short.left.message).toBe("malformed transaction: result.challenge payload must be a list of 6")
    const badLoser = decodeTransaction(encodeRlp([...fields.slice(0, 4), [...payload.slice(0, 3), new Uint8Array(3), ...payload.slice(4)], ...fields.slice(5)] as RlpInput))
    expect(Either.isLeft(badLoser) && badLoser.left.message).toMatch(/result.challenge.loser/)
  })
})

describe("result.challenge properties", () => {
  const base = setup()
  const tasks = [hashOf("p-0"), hashOf("p-1"), hashOf("p-2")]
  const workers = [worker1, worker2, worker3] as const
  const senders = [validators[0], validators[1], validators[2], developer] as const
  /** Task i, loser j (the other two witness), from sender k. */
  const arbChallenge = fc.record({ task: fc.nat(2), loser: fc.nat(2), sender: fc.nat(3) })
  const payloadOf = (c: { readonly task: number; readonly loser: number }): ResultChallengePayload => {
    const task = tasks[c.task]!
    const [a, b] = workers.filter((_, i) => i !== c.loser)
    return challenge(task, base.model, { loser: resultOf(workers[c.loser]!, task, 1, WRONG), winner: resultOf(a!, task), referee: resultOf(b!, task) })
  }
  // Signing is the costly part: each distinct challenge is signed once.
  const txs = new Map<string, ReturnType<typeof challengeTx>>()
  const txOf = (c: { readonly task: number; readonly loser: number; readonly sender: number }) => {
    const id = `${c.task}/${c.loser}/${c.sender}`
    if (!txs.has(id)) txs.set(id, challengeTx(payloadOf(c), senders[c.sender]))
    return txs.get(id)!
  }

  it("exactly once: each (task, loser) proven by a member is slashed once, whatever the repeats; bonds + stake-pool payouts = the bonds before", () => {
    fc.assert(
      fc.property(fc.array(arbChallenge, { maxLength: 12 }), (cs) => {
        let s = base.state
        const proven: Array<AiResultProvenWrong> = []
        for (const c of cs) {
          const r = step(s, ctxAt(10), txOf(c))
          s = r.state
          proven.push(...provenOf(r.events))
        }
        const expected = new Set(cs.filter((c) => c.sender < 3).map((c) => `${c.task}/${c.loser}`))
        expect(new Set(proven.map((e) => `${e.taskId}/${e.worker}`)).size).toBe(proven.length)
        expect(proven.length).toBe(expected.size)
        const closed = step(s, ctxAt(11), epochReceipt(0, T0, T0 + 100_000))
        expect(closed.rejection).toBeNull()
        const slashes = slashesOf(closed.events)
        expect(slashes.every((x) => x.amount === x.toUser + x.toReporter + x.burned)).toBe(true)
        const bondedBefore = workers.reduce((n, w) => n + bondedOf(base.state.economy, w.publicKey.address), 0n)
        const bondedAfter = workers.reduce((n, w) => n + bondedOf(closed.state.economy, w.publicKey.address), 0n)
        const paid = stakePoolPayouts(closed.events).reduce((n, [, a]) => n + a, 0n)
        expect(bondedAfter + paid).toBe(bondedBefore)
        expect(slashes.reduce((n, x) => n + x.amount, 0n)).toBe(paid)
      }),
      { numRuns: 40 }
    )
  })

  it("deterministic: the same inputs give the same decisions (events or refusals) and the same state", () => {
    fc.assert(
      fc.property(fc.array(arbChallenge, { maxLength: 8 }), (cs) => {
        const run = () => {
          const out: Array<unknown> = []
          let s = base.state
          for (const c of cs) {
            const d = decideAi(s, ctxAt(10), txOf(c))
            if (Either.isLeft(d)) {
              out.push(d.left)
              continue
            }
            out.push(d.right)
            s = d.right.reduce(evolveAi, s)
          }
          return { out, s }
        }
        const a = run()
        const b = run()
        expect(a.out).toEqual(b.out)
        expect(a.s.challenged).toEqual(b.s.challenged)
        expect(a.s.economy.wrongResults).toEqual(b.s.economy.wrongResults)
      }),
      { numRuns: 25 }
    )
  })

  it("a proof with one field corrupted is refused (never a slash)", () => {
    const task = tasks[0]!
    const good = payloadOf({ task: 0, loser: 0 })
    const corrupt: ReadonlyArray<(p: ResultChallengePayload) => ResultChallengePayload> = [
      (p) => ({ ...p, taskId: hashOf("other task") }),
      (p) => ({ ...p, loser: { ...p.loser, execMs: p.loser.execMs + 1 } }),
      (p) => ({ ...p, winner: { ...p.winner, fingerprint: hashOf("x") } }),
      (p) => ({ ...p, referee: { ...p.referee, signature: p.winner.signature } }),
      (p) => ({ ...p, loser: { ...p.loser, fingerprint: FINGERPRINT } }),
      (p) => ({ ...p, grant: { ...p.grant, spendMax: p.grant.spendMax + 1n } }),
      (p) => ({ ...p, referee: { ...p.referee, worker: worker1.publicKey.address } })
    ]
    fc.assert(
      fc.property(fc.constantFrom(...corrupt), (f) => {
        const d = decideAi(base.state, ctxAt(10), challengeTx(f(good)))
        expect(Either.isLeft(d)).toBe(true)
      }),
      { numRuns: 30 }
    )
    expect(task).toBe(good.taskId)
  })
})

describe("wrongResultProofs (what a gateway sends on validation)", () => {
  const base = setup()
  const task = hashOf("gateway task")
  const OTHER = hashOf("a third fingerprint")
  const keys = [worker1, worker2, worker3] as const
  const signedBy = (k: PrivateKey, fingerprint: Hash32, execMs: number): SignedResult => ({
    fingerprint,
    execMs,
    // As a compute node sends it: upper case hex is accepted, the proof carries it lower case.
    signature: resultOf(k, task, execMs, fingerprint).signature.toUpperCase().replace("0X", "0x")
  })

  it("a proof for each wrong worker with two other workers on the validated fingerprint, none otherwise; every proof given is one the ledger accepts", () => {
    fc.assert(
      fc.property(fc.tuple(fc.constantFrom(FINGERPRINT, WRONG, OTHER), fc.constantFrom(FINGERPRINT, WRONG, OTHER), fc.constantFrom(FINGERPRINT, WRONG, OTHER)), (fps) => {
        const results = new Map(keys.map((k, i) => [k.publicKey.address as string, signedBy(k, fps[i]!, 100 + i)]))
        const wrong = keys.filter((_, i) => fps[i] !== FINGERPRINT).map((k) => k.publicKey.address as string)
        const proofs = wrongResultProofs({ grant: grantOf(developer, { model: base.model }), taskId: task, model: base.model, fingerprint: FINGERPRINT, results, wrong })
        const agreeing = fps.filter((f) => f === FINGERPRINT).length
        expect(proofs.map((p) => p.loser.worker)).toEqual(agreeing >= 2 ? wrong : [])
        for (const p of proofs) {
          const r = step(base.state, ctxAt(10), challengeTx(p))
          expect(r.rejection).toBeNull()
          expect(provenOf(r.events).map((e) => e.worker)).toEqual([p.loser.worker])
        }
      })
    )
  })
})
