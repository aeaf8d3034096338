/** Aligned text tables for the CLI: left-aligned text, right-aligned numbers. */

export type Align = "left" | "right"

/**
 * Rows under a header, each column as wide as its widest cell, two spaces
 * apart; `align` per column (default: right for cells that look like numbers).
 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align?: ReadonlyArray<Align>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[0-9][0-9_.,%]*$/.test(r[i] ?? "")))
  const alignOf = (i: number): Align => align?.[i] ?? (numeric[i] ? "right" : "left")
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (alignOf(i) === "right" ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** `label  value` lines with the labels padded to one width. */
export const fields = (pairs: ReadonlyArray<readonly [string, string]>, indent = "  "): string => {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join("\n")
}

/** A part of a whole in percent with two decimals (bigints: exact up to the rounding of the last digit). */
export const percentOf = (part: bigint, whole: bigint): string => {
  if (whole === 0n) return "-"
  const hundredths = (part * 10_000n) / whole
  return `${hundredths / 100n}.${String(hundredths % 100n).padStart(2, "0")}%`
}
