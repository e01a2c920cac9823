import { describe, expect, it } from 'vitest';
import { DNS_TYPE_A, buildDns, parseDns } from './dns.ts';

describe('DNS', () => {
  it('round trips a query and an answer', () => {
    const q = buildDns({ id: 0x1234, flags: 0x0100, questions: [{ name: 'gateway.lab', type: DNS_TYPE_A, class: 1 }] });
    const p = parseDns(q)!;
    expect(p.questions).toEqual([{ name: 'gateway.lab', type: 1, class: 1 }]);
    expect(p.isResponse).toBe(false);
    const r = buildDns({ id: 1, flags: 0x8180, questions: p.questions, answers: [{ name: 'gateway.lab', type: 1, class: 1, ttl: 60, data: new Uint8Array([10, 0, 2, 2]) }] });
    const pr = parseDns(r)!;
    expect(pr.isResponse).toBe(true);
    expect([...pr.answers[0].data]).toEqual([10, 0, 2, 2]);
  });

  it('follows compression pointers and refuses pointer loops', () => {
    // header, question "a.b" then an answer whose name is a pointer to offset 12.
    const q = buildDns({ id: 1, flags: 0x8000, questions: [{ name: 'a.b', type: 1, class: 1 }] });
    const ans = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
    const msg = new Uint8Array([...q, ...ans]);
    msg[7] = 1; // ancount
    expect(parseDns(msg)!.answers[0].name).toBe('a.b');
    const loop = new Uint8Array([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseDns(loop)).toBeNull();
    const lying = new Uint8Array(12);
    lying[5] = 200; // 200 questions in 0 bytes
    expect(parseDns(lying)).toBeNull();
  });
});
