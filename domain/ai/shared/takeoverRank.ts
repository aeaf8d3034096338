/**
 * Which member submits a shared receipt first when its own gateway has not
 * settled it after the grace period: the committee's members in address
 * order, rotated by the task id, so different tasks start with different
 * members and, for one task, members take turns (rank 0 first, then 1, …)
 * rather than all submitting at once (each duplicate is refused by the
 * ledger, but costs every member its signature checks).
 */
import type { Hash32 } from "../../chain/hash.js"
import type { Address } from "../../chain/keys.js"

/** `self`'s turn for `taskId` among `members` (0 … n − 1); 0 when it is not a member (it has no turn to wait for). */
export const takeoverRank = (members: ReadonlyArray<Address>, self: Address, taskId: Hash32): number => {
  const sorted = [...new Set(members)].sort()
  const at = sorted.indexOf(self)
  if (at < 0) return 0
  const shift = Number.parseInt(taskId.slice(2, 10), 16) % sorted.length
  return (at - shift + sorted.length) % sorted.length
}
