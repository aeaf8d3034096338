/**
 * Failover charges once (issue 12, item 5: "a developer is never charged
 * twice"), on the devnet `npm start` runs (`topai devnet --validators 4`,
 * an in-process compute node). The task id is the digest of the
 * developer's signed request, so the same grant nonce and the same request
 * sent to two gateways make one task:
 *
 * - served by both (what happens when a gateway signed its receipt and then
 *   went silent, and the developer sent the same request to another): both
 *   gateways answer with the same task id, both submit a usage receipt, the
 *   AI ledger settles the task once and refuses the other `AlreadySettled`;
 *   the developer's escrow on the ledger went down by one price, and each
 *   gateway's local book ends equal to the ledger's;
 * - the same request sent to a second gateway after the first's receipt
 *   settled, the developer's escrow on the ledger spent on it: served (the
 *   task is paid), charged once, that gateway's book equal to the ledger;
 * - the typed client with two node URLs, the first down, fails over to the
 *   second with the same task id; `topai infer --rpc DOWN --failover URL`
 *   does the same; each call charged once on the ledger.
 */
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { sessionGrantDigest, signMessage } from "../../domain/ai/signedMessages.js"
import { freshRequestNonce, inferWithFailover, signInferRequest } from "../../src/client/index.js"
import { readFileSync } from "node:fs"
import { SILERO_CLI_FLAGS, SILERO_PATH, writeSileroInput } from "../ai/support/models.js"
import { DEV, waitFor } from "./support/chain.js"
import { openClient, type TestClient } from "./support/client.js"
import { cleanup, freePort, makeTempDir, runCli, spawnNode, wsUrl, type NodeProcess, hexKey, expectJson } from "./support/processes.js"

const VALIDATORS = 4
const PRICE = 10n * 10n ** 15n
const DEPOSIT = 100n * PRICE
const PROVIDER = DEV[1]!
/** Serves the same request through two gateways. */
const TWICE = DEV[3]!
/** Fails over from a node that is down. */
const FAILING_OVER = DEV[2]!
/** Escrow for one call: its failover comes after the first gateway's receipt settled. */
const LATE = DEV[4]!


let devnet: NodeProcess | undefined
const clients: Array<TestClient> = []

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await devnet?.stop().catch(() => undefined)
  await cleanup()
})

interface UsageEvent {
  readonly type: string
  readonly taskId: string
  readonly reason?: string
}

describe("failover with the same signed request on a 4-validator devnet", () => {
  it(
    "the same request served by validators 2 and 3: one task id, settled once (a second receipt refused AlreadySettled), charged once, both gateways' books equal to the ledger; a failover after the first receipt settled (escrow spent on it) served, charged once; the client and topai infer fail over from a node that is down, the same task id, charged once",
    async () => {
      const dataDir = makeTempDir("failover")
      devnet = await spawnNode({
        dataDir,
        command: ["devnet", "--validators", String(VALIDATORS), "--shards", "2"],
        extraArgs: ["--workers", "1", "--epoch-blocks", "4", "--beacon-interval-ms", "500"],
        readyTimeoutMs: 40_000
      })
      const url = (i: number) => `ws://127.0.0.1:${devnet!.port + i}/ws`
      for (let i = 0; i < VALIDATORS; i++) clients.push(await openClient(url(i)))
      const [v0, , v2, v3] = clients as [TestClient, TestClient, TestClient, TestClient]
      const status = await v0.run(v0.client.node.status())
      const aiShard = status.shards.find((s) => s.kind === "ai")!.shard
      const usageOn = async (c: TestClient): Promise<ReadonlyArray<UsageEvent>> =>
        (await c.run(c.client.events.read({ stream: `shard-${aiShard}`, from: 0, limit: 10_000 })))
          .filter((e) => e.type === "UsageSettled" || e.type === "UsageRefused")
          .map((e) => ({ type: e.type, ...(e.data as { taskId: string; reason?: string }) }))

      const upload = await runCli(
        ["model", "upload", SILERO_PATH, "--name", "silero-failover", "--price", String(PRICE), ...SILERO_CLI_FLAGS, "--key", hexKey(PROVIDER.key), "--rpc", url(1), "--json"],
        { timeoutMs: 90_000 }
      )
      const model = expectJson<{ id: string; status: string }>(upload)
      expect(model.status).toBe("Verified")
      for (const [dev, amount] of [[TWICE, DEPOSIT], [FAILING_OVER, DEPOSIT], [LATE, PRICE]] as const) {
        expectJson(await runCli(["escrow", "deposit", model.id, String(amount), "--key", hexKey(dev.key), "--rpc", url(2), "--json"], { timeoutMs: 60_000 }))
      }
      await waitFor(
        "the model Verified and the escrows on the ledger at validators 2 and 3",
        async () => {
          for (const c of [v2, v3]) {
            if ((await c.run(c.client.model.get({ model: model.id }))).status !== "Verified") return undefined
            for (const [dev, amount] of [[TWICE, DEPOSIT], [FAILING_OVER, DEPOSIT], [LATE, PRICE]] as const) {
              if ((await c.run(c.client.escrow.get({ developer: dev.address, model: model.id }))).onLedger !== amount) return undefined
            }
          }
          return true
        },
        { timeoutMs: 60_000, intervalMs: 200 }
      )
      const inputPath = writeSileroInput(makeTempDir("failover-input"))
      const inputs = JSON.parse(readFileSync(inputPath, "utf8")) as unknown

      // One grant, signed once, opened at two gateways; one request (one nonce) sent to both at once.
      const issuedAt = Date.now()
      const grant = { chainId: status.chainId, model: model.id, issuedAt, expiresAt: issuedAt + 600_000, spendMax: PRICE, nonce: freshRequestNonce() }
      const signedGrant = { publicKey: TWICE.key.publicKey.hex, model: model.id, issuedAt, expiresAt: grant.expiresAt, spendMax: PRICE, nonce: grant.nonce, signature: signMessage(sessionGrantDigest(grant), TWICE.key) }
      const request = signInferRequest(TWICE.key, grant, inputs)
      if (request._tag === "Left") throw new Error(request.left.message)
      const served = await Promise.all(
        [v2, v3].map(async (c) => {
          const { session } = await c.run(c.client.session.open(signedGrant))
          return c.run(c.client.infer({ session, inputs, ...request.right }), 60_000)
        })
      )
      const taskId = request.right.task
      expect(served.map((r) => [r.task, r.charged])).toEqual([
        [taskId, PRICE],
        [taskId, PRICE]
      ])
      // Settled once on every validator. The second gateway's receipt, if it was sent at all (its Settler drops a
      // receipt whose task the ledger settled before its round), is refused AlreadySettled.
      const refusals: Array<number> = []
      for (const c of clients) {
        const usage = await waitFor(
          "the task settled on the AI ledger",
          async () => {
            const u = (await usageOn(c)).filter((e) => e.taskId === taskId)
            return u.some((e) => e.type === "UsageSettled") ? u : undefined
          },
          { timeoutMs: 60_000, intervalMs: 250 }
        )
        expect(usage[0]).toMatchObject({ type: "UsageSettled" })
        for (const e of usage.slice(1)) expect([e.type, e.reason]).toEqual(["UsageRefused", "AlreadySettled"])
        refusals.push(usage.length - 1)
      }
      console.log(`[failover] the second gateway's receipt: ${refusals[0] === 0 ? "dropped before it was sent (the ledger had settled the task)" : "refused AlreadySettled"}`)
      // Charged once on the ledger; each gateway's book (which captured the price) equal to it, nothing left to settle.
      await waitFor(
        "the developer charged once: the ledger and both gateways' books at the deposit less one price",
        async () => {
          const views = await Promise.all([v2, v3].map((c) => c.run(c.client.escrow.get({ developer: TWICE.address, model: model.id }))))
          for (const e of views) {
            expect(e.onLedger).toBe(DEPOSIT - PRICE)
            if (e.unsettled !== 0n || e.reserved !== 0n) return undefined
            expect(e.available).toBe(e.onLedger)
          }
          return true
        },
        { timeoutMs: 30_000, intervalMs: 250 }
      )

      // A failover that comes after the first gateway's receipt settled (a gateway restarted, its Settler sent it):
      // the developer's escrow on the ledger is spent on this very task, and the second gateway serves it all the same.
      const lateIssued = Date.now()
      const lateGrant = { chainId: status.chainId, model: model.id, issuedAt: lateIssued, expiresAt: lateIssued + 600_000, spendMax: PRICE, nonce: freshRequestNonce() }
      const lateSigned = { publicKey: LATE.key.publicKey.hex, model: model.id, issuedAt: lateIssued, expiresAt: lateGrant.expiresAt, spendMax: PRICE, nonce: lateGrant.nonce, signature: signMessage(sessionGrantDigest(lateGrant), LATE.key) }
      const lateRequest = signInferRequest(LATE.key, lateGrant, inputs)
      if (lateRequest._tag === "Left") throw new Error(lateRequest.left.message)
      const serveAt = async (c: TestClient) => {
        const { session } = await c.run(c.client.session.open(lateSigned))
        return c.run(c.client.infer({ session, inputs, ...lateRequest.right }), 60_000)
      }
      expect((await serveAt(v2)).task).toBe(lateRequest.right.task)
      await waitFor(
        "the first gateway's receipt settled at validator 3: the escrow on the ledger spent",
        async () => ((await v3.run(v3.client.escrow.get({ developer: LATE.address, model: model.id }))).onLedger === 0n ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 250 }
      )
      const late = await serveAt(v3)
      expect([late.task, late.charged]).toEqual([lateRequest.right.task, PRICE])
      await waitFor(
        "validator 3's book equal to the ledger (the task paid once)",
        async () => {
          const e = await v3.run(v3.client.escrow.get({ developer: LATE.address, model: model.id }))
          expect(e.onLedger).toBe(0n)
          return e.unsettled === 0n && e.reserved === 0n && e.available === 0n ? true : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250 }
      )
      expect((await usageOn(v0)).filter((e) => e.taskId === lateRequest.right.task && e.type === "UsageSettled")).toHaveLength(1)

      // The typed client, two URLs, the first down (nothing listens there): the call completes at validator 3.
      const down = wsUrl(await freePort())
      const failedOver: Array<string> = []
      const viaClient = await Effect.runPromise(
        inferWithFailover({
          urls: [down, url(3)],
          key: FAILING_OVER.key,
          chainId: status.chainId,
          model: model.id,
          spendMax: PRICE,
          expiresAt: Date.now() + 600_000,
          inputs,
          perNode: "60 seconds",
          onFailover: (u) => Effect.sync(() => void failedOver.push(u))
        })
      )
      expect(failedOver).toEqual([down])
      expect(viaClient.url).toBe(url(3))
      expect(viaClient.result.task).toBe(viaClient.task)
      expect(viaClient.result.charged).toBe(PRICE)
      // And the CLI: `--rpc DOWN --failover URL`.
      const cli = await runCli(["infer", model.id, "--input", inputPath, "--key", hexKey(FAILING_OVER.key), "--rpc", down, "--failover", url(2), "--json"], { timeoutMs: 60_000 })
      const viaCli = expectJson<{ task: string; charged: string }>(cli)
      expect(viaCli.charged).toBe(String(PRICE))
      expect(cli.stderr).toContain(`no answer from ${down}`)
      const both = [viaClient.task, viaCli.task]
      await waitFor(
        "both failed-over calls settled once each, the developer charged two prices",
        async () => {
          const u = (await usageOn(v0)).filter((e) => both.includes(e.taskId))
          if (u.filter((e) => e.type === "UsageSettled").length < 2) return undefined
          expect(u.map((e) => e.type).sort()).toEqual(["UsageSettled", "UsageSettled"])
          const e = await v0.run(v0.client.escrow.get({ developer: FAILING_OVER.address, model: model.id }))
          expect(e.onLedger).toBe(DEPOSIT - 2n * PRICE)
          return true
        },
        { timeoutMs: 60_000, intervalMs: 250 }
      )

      for (const c of clients.splice(0)) await c.close()
      expect(await devnet.stop("SIGINT", 20_000)).toMatchObject({ code: 0, forced: false })
      devnet = undefined
    },
    240_000
  )
})
