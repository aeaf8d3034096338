/**
 * How long a compute node lets one run go, from the model's verified cost:
 * the smoke run's time (measured by the validators on the smoke shapes),
 * scaled by how many more input bytes the request holds than the smoke
 * inputs (work grows at least that fast for the models a manifest can
 * bound), times a safety factor for slower workers and noise, within a
 * floor (timer and scheduling noise dominate short runs) and a cap (no call
 * holds a worker longer, whatever the model claims).
 *
 *   deadline = clamp(ceil(smokeRunMillis × max(1, requestBytes / smokeBytes) × factor), floor, cap)
 *
 * A run past it is killed and charged (task/overrun.ts).
 */
export interface RunDeadlineRules {
  readonly factor: number
  readonly floorMillis: number
  readonly capMillis: number
}

export const DEFAULT_RUN_DEADLINE_RULES: RunDeadlineRules = { factor: 20, floorMillis: 1_000, capMillis: 30_000 }

export const runDeadlineMillis = (
  smokeRunMillis: number,
  smokeBytes: number,
  requestBytes: number,
  rules: RunDeadlineRules = DEFAULT_RUN_DEADLINE_RULES
): number => {
  const scale = smokeBytes > 0 ? Math.max(1, requestBytes / smokeBytes) : 1
  const raw = Math.ceil(Math.max(0, smokeRunMillis) * scale * rules.factor)
  return Math.min(rules.capMillis, Math.max(rules.floorMillis, Number.isFinite(raw) ? raw : rules.capMillis))
}
