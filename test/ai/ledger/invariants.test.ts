import { describe, expect, it } from "@effect/vitest"
import { keccakHex } from "../../../domain/chain/hash.js"
import { utf8 } from "../../../domain/chain/hex.js"
import { devKeyFromSeed } from "../../../domain/chain/keys.js"
import {
  BURN_ADDRESS,
  isSystemAddress,
  SYSTEM_ESCROW,
  SYSTEM_FOUNDATION,
  SYSTEM_RESERVE,
  SYSTEM_STAKE_POOL,
  SYSTEM_TREASURY,
  systemAddress
} from "../../../domain/economics/accounts.js"
import { EscrowCredited, EscrowWithdrawn, UsageSettled } from "../../../domain/ai/ledger/events.js"
import { evolveAi } from "../../../domain/ai/ledger/evolve.js"
import { developer, hashOf, initial, provider } from "./support.js"

const dev = developer.publicKey.address
const model = hashOf("m")
const settled = (taskId = hashOf("t"), price = 10n, spendMax = 100n) =>
  new UsageSettled({ taskId, model, provider: provider.publicKey.address, developer: dev, grant: hashOf("g"), spendMax, price, workers: [], at: 0 })

describe("keyless system accounts", () => {
  it("systemAddress(name) = the last 20 bytes of keccak256('topai/system/' + name)", () => {
    expect(systemAddress("escrow")).toBe("0x" + keccakHex(utf8("topai/system/escrow")).slice(2 + 24))
    expect(new Set([SYSTEM_RESERVE, SYSTEM_FOUNDATION, SYSTEM_STAKE_POOL, SYSTEM_TREASURY, SYSTEM_ESCROW]).size).toBe(5)
  })
  it("isSystemAddress: the five keyless ones, not BURN, not the old keyed reserve, not a user", () => {
    for (const a of [SYSTEM_RESERVE, SYSTEM_FOUNDATION, SYSTEM_STAKE_POOL, SYSTEM_TREASURY, SYSTEM_ESCROW]) expect(isSystemAddress(a)).toBe(true)
    expect(isSystemAddress(BURN_ADDRESS)).toBe(false)
    // The address the old design derived from a public seed (anyone could sign for it) is not a system account.
    expect(isSystemAddress(devKeyFromSeed("topai-mining-reserve").publicKey.address)).toBe(false)
    expect(isSystemAddress(dev)).toBe(false)
  })
})

describe("evolveAi invariants (a corrupt stream stops the fold)", () => {
  const funded = [new EscrowCredited({ receiptId: hashOf("r"), developer: dev, model, amount: 50n })].reduce(evolveAi, initial())
  it("escrow never goes negative", () => {
    expect(() => evolveAi(funded, new EscrowWithdrawn({ txHash: hashOf("w"), developer: dev, model, amount: 51n }))).toThrow(/escrow .* would be -1/)
  })
  it("no receipt id is credited twice", () => {
    expect(() => evolveAi(funded, new EscrowCredited({ receiptId: hashOf("r"), developer: dev, model, amount: 1n }))).toThrow(/credited twice/)
  })
  it("no usage receipt id is settled twice", () => {
    const once = evolveAi(funded, settled())
    expect(() => evolveAi(once, settled())).toThrow(/settled twice/)
  })
  it("a grant never spends over its cap", () => {
    const once = evolveAi(funded, settled(hashOf("a"), 30n, 40n))
    expect(() => evolveAi(once, settled(hashOf("b"), 11n, 40n))).toThrow(/over its cap/)
  })
})
