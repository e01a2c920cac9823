/** Small live charts: requests/s and chain bytes/s of one function over the last minute. */
import type { Rates } from './rates.ts';
import { help } from './glossary.ts';

const W = 150;
const H = 30;

function fmt(x: number, unit: string): string {
  if (unit === 'B/s') {
    if (x >= 1024 * 1024) return `${(x / 1024 / 1024).toFixed(1)} MiB/s`;
    if (x >= 1024) return `${(x / 1024).toFixed(1)} KiB/s`;
    return `${x.toFixed(0)} B/s`;
  }
  return `${x >= 100 ? x.toFixed(0) : x.toFixed(1)} ${unit}`;
}

function Sparkline({ values, label, unit, title }: { values: number[]; label: string; unit: string; title?: string }) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? W / (values.length - 1) : W;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`).join(' ');
  const now = values.length ? values[values.length - 1] : 0;
  return (
    <figure className="ins-rate" title={title}>
      <figcaption>
        {label} <strong data-testid={`ins-rate-${unit === 'B/s' ? 'bytes' : 'requests'}`}>{fmt(now, unit)}</strong>
      </figcaption>
      <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${label} over the last minute`}>
        <polyline points={points} fill="none" stroke="currentColor" strokeWidth="1.5" />
      </svg>
      <span className="ins-dim">peak {fmt(max === 1 && now === 0 ? 0 : max, unit)}</span>
    </figure>
  );
}

export function RateCharts({ rates }: { rates: Rates }) {
  return (
    <div className="ins-rates" data-testid="ins-rates">
      <Sparkline values={rates.requestsPerSecond} label="requests" unit="/s" title={help('rateRequests')} />
      <Sparkline values={rates.bytesPerSecond} label="chain bytes" unit="B/s" title={help('rateBytes')} />
    </div>
  );
}
