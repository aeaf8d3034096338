/**
 * mulberry32: a tiny seeded PRNG in 32-bit integer arithmetic, so the same
 * seed gives the same sequence everywhere and a failing run replays from its
 * seed (kill moments, fault soaks, simulated workloads).
 */

/** Uniform 32-bit unsigned integers. */
export const mulberry32U32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** Uniform numbers in [0, 1). */
export const mulberry32 = (seed: number): (() => number) => {
  const u32 = mulberry32U32(seed)
  return () => u32() / 4294967296
}
