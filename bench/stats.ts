/** Small helpers for benchmark tables: median and range, formatted. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(xs: number[], unit = 'ms', digits = 0): string {
  const f = (x: number) => x.toFixed(digits);
  return `median ${f(median(xs))} ${unit} (min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))}, n=${xs.length})`;
}

/** One figure of a results table: the median of several runs, with their range. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function figure(runs: number[]): Figure {
  return { median: median(runs), min: Math.min(...runs), max: Math.max(...runs), runs };
}

/** "12.3 (11.0–13.1)" for a markdown cell. */
export function cell(f: Figure | undefined, digits = 0): string {
  if (!f || f.runs.length === 0) return '–';
  const x = (v: number) => v.toFixed(digits);
  return f.runs.length === 1 ? x(f.median) : `${x(f.median)} (${x(f.min)}–${x(f.max)})`;
}

/**
 * Per-round ratios a[i] / b[i] of two columns measured side by side in the same rounds
 * (undefined entries: rounds dropped from either), as a figure: its range is the ratio's own
 * spread, which the two columns' ranges would overstate (a slow round slows both).
 */
export function pairedRatio(a: readonly (number | undefined)[], b: readonly (number | undefined)[]): Figure | undefined {
  const rs: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0) rs.push(x / y);
  }
  return rs.length ? figure(rs) : undefined;
}

/** Half the range as a share of the median: "±4 %" means min and max lie within 4 % of it. */
export function spreadPct(f: Figure): number {
  return f.median > 0 ? ((f.max - f.min) / 2 / f.median) * 100 : Infinity;
}

/** "0.97× ±4 %" (a single round: no spread to give). */
export function ratioCell(f: Figure | undefined): string {
  if (!f) return '–';
  const x = `${f.median.toFixed(2)}×`;
  return f.runs.length < 2 ? x : `${x} ±${spreadPct(f).toFixed(0)} %`;
}
