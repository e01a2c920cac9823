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

/**
 * 1-based ranks of the sorted samples that bound a distribution-free confidence interval of
 * ≥ 95 % for the median of `n` samples: the largest k with P(Binomial(n, ½) < k) ≤ 2.5 %,
 * giving [x(k), x(n+1−k)]. Undefined below 6 samples (no such k). Up to 8 samples k is 1, the
 * whole range; from 9 on the most extreme rounds fall outside (9: 2nd–8th, 13: 3rd–11th).
 */
export function medianCiRanks(n: number): [number, number] | undefined {
  let k = 0;
  let term = Math.pow(0.5, n); // P(B = 0)
  let below = 0; // P(B < k)
  while (k < n && below + term <= 0.025) {
    below += term;
    term = (term * (n - k)) / (k + 1); // P(B = k + 1)
    k++;
  }
  return k === 0 ? undefined : [k, n + 1 - k];
}

/**
 * The spread printed beside a ratio, as a share of its median: half the width of the median's
 * 95 % confidence interval (medianCiRanks), or half the range where the rounds are too few for
 * one. "±4 %": the interval lies within 4 % of the median.
 */
export function spreadPct(f: Figure): number {
  if (!(f.median > 0)) return Infinity;
  const s = [...f.runs].sort((a, b) => a - b);
  const ranks = medianCiRanks(s.length);
  const [lo, hi] = ranks ? [s[ranks[0] - 1]!, s[ranks[1] - 1]!] : [f.min, f.max];
  return ((hi - lo) / 2 / f.median) * 100;
}

/** "0.97× ±4 %" (a single round: no spread to give). */
export function ratioCell(f: Figure | undefined): string {
  if (!f) return '–';
  const x = `${f.median.toFixed(2)}×`;
  return f.runs.length < 2 ? x : `${x} ±${spreadPct(f).toFixed(0)} %`;
}
