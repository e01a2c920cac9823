import { describe, expect, it } from 'vitest';
import { figure, medianCiRanks, spreadPct } from './stats.ts';

/** P(Binomial(n, ½) < k), summed directly. */
function below(n: number, k: number): number {
  let p = 0;
  let c = 1;
  for (let i = 0; i < k; i++) {
    p += c / 2 ** n;
    c = (c * (n - i)) / (i + 1);
  }
  return p;
}

describe('the median’s confidence interval', () => {
  it('takes the tightest order statistics that still cover the median 95 % of the time', () => {
    expect(medianCiRanks(5)).toBeUndefined();
    for (let n = 6; n <= 40; n++) {
      const [k, upper] = medianCiRanks(n)!;
      expect(upper).toBe(n + 1 - k);
      expect(below(n, k)).toBeLessThanOrEqual(0.025); // coverage ≥ 95 %
      expect(below(n, k + 1)).toBeGreaterThan(0.025); // one rank further in would not be
    }
    expect(medianCiRanks(9)).toEqual([2, 8]);
    expect(medianCiRanks(13)).toEqual([3, 11]);
  });

  it('leaves the extreme rounds out of the spread once there are enough of them', () => {
    const runs = [0.5, 0.98, 0.99, 1.0, 1.0, 1.0, 1.01, 1.02, 1.6]; // two disturbed rounds
    expect(spreadPct(figure(runs))).toBeCloseTo(2, 5); // 0.98–1.02 around 1.0
    expect(spreadPct(figure(runs.slice(0, 7)))).toBeCloseTo(25.5, 5); // 7 rounds: the whole range, 0.5–1.01
  });
});
