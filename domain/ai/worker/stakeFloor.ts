/**
 * Who may register a compute node without bonding anything. On a dev devnet
 * (dev accounts funded at genesis: their keys are public, the chain is for
 * trying things) nobody needs to; on every other network a worker must bond
 * more than zero, or registering would cost an attacker nothing.
 */
export const workerStakeFloorProblem = (devAccountCount: number, minWorkerStake: bigint): string | undefined =>
  devAccountCount === 0 && minWorkerStake <= 0n
    ? "a chain without dev accounts must set economics.minWorkerStake above 0: compute nodes register against a bonded stake"
    : undefined
