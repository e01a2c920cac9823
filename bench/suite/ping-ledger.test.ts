import { describe, expect, it } from 'vitest';
import { PingLedger, lossVerdict, percentile, withinBound } from './ping-ledger.ts';

describe('the load generator’s ping ledger', () => {
  it('counts every reply it should get once, with its round trip', () => {
    const l = new PingLedger();
    for (let i = 0; i < 100; i++) l.request(i, 1000);
    for (let i = 0; i < 100; i++) expect(l.reply(i, 1000 + i + 1)).toBe(true);
    l.expire(5000);
    const s = l.summary();
    expect(s).toMatchObject({ sent: 100, received: 100, lost: 0, unexpected: 0, lossPercent: 0, p50: 50, p99: 99, max: 100 });
    expect(lossVerdict(s, 0)).toBeNull();
    expect(withinBound(s, 99)).toBe(true);
    expect(withinBound(s, 98)).toBe(false);
  });

  it('books unanswered requests as lost only once they are older than the cutoff, and fails beyond the threshold', () => {
    const l = new PingLedger();
    for (let i = 0; i < 1000; i++) l.request(i, i);
    for (let i = 0; i < 1000; i++) if (i % 100 !== 0) l.reply(i, i + 5);
    l.expire(500); // requests 0..499 unanswered are lost; 500..999 may still come
    expect(l.summary().lost).toBe(5);
    expect(l.pending).toBe(5);
    l.expire(2000);
    const s = l.summary();
    expect(s).toMatchObject({ sent: 1000, received: 990, lost: 10, lossPercent: 1 });
    expect(lossVerdict(s, 1)).toBeNull();
    expect(lossVerdict(s, 0.5)).toMatch(/lost 10\/1000/);
    expect(withinBound(s, 1000)).toBe(false);
  });

  it('counts duplicate and unsolicited replies and fails on them', () => {
    const l = new PingLedger();
    l.request(7, 0);
    expect(l.reply(7, 1)).toBe(true);
    expect(l.reply(7, 2)).toBe(false);
    expect(l.reply(8, 2)).toBe(false);
    const s = l.summary();
    expect(s.unexpected).toBe(2);
    expect(lossVerdict(s, 100)).toMatch(/2 replies/);
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
    expect(percentile([], 50)).toBeNaN();
  });
});
