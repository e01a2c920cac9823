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
