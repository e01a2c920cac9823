import { describe, expect, it } from 'vitest';
import { DrainPoint } from './drain-point.ts';

const microtask = () => new Promise<void>((r) => queueMicrotask(r));

describe('DrainPoint', () => {
  it('runs a deferred job at the next timer check, and the microtask then finds nothing', async () => {
    const d = new DrainPoint();
    const ran: string[] = [];
    d.defer(() => ran.push('a'));
    d.defer(() => ran.push('b'));
    expect(ran).toEqual([]);
    d.atTimerCheck();
    expect(ran).toEqual(['a', 'b']);
    d.atTimerCheck();
    await microtask();
    expect(ran).toEqual(['a', 'b']);
    expect(d.counts).toEqual({ atTimerCheck: 2, atMicrotask: 0 });
  });

  it('without a timer check, the job runs in a microtask after the current task', async () => {
    const d = new DrainPoint();
    const ran: number[] = [];
    d.defer(() => ran.push(1));
    expect(ran).toEqual([]);
    await microtask();
    expect(ran).toEqual([1]);
    expect(d.counts).toEqual({ atTimerCheck: 0, atMicrotask: 1 });
    // And again: the microtask is queued anew for later jobs.
    d.defer(() => ran.push(2));
    await microtask();
    expect(ran).toEqual([1, 2]);
  });

  it('a job scheduled while jobs run waits for the next point, never runs twice', async () => {
    const d = new DrainPoint();
    const ran: string[] = [];
    d.defer(() => {
      ran.push('outer');
      d.defer(() => ran.push('inner'));
    });
    d.atTimerCheck();
    expect(ran).toEqual(['outer']);
    await microtask();
    await microtask();
    expect(ran).toEqual(['outer', 'inner']);
  });

  it('a held job runs at the next timer check, or else in the next task, once', async () => {
    const d = new DrainPoint();
    const ran: string[] = [];
    d.hold(() => ran.push('a'));
    await microtask();
    expect(ran).toEqual([]); // never in this task
    d.atTimerCheck();
    expect(ran).toEqual(['a']);
    d.hold(() => ran.push('b'));
    await new Promise((r) => setTimeout(r, 20)); // no timer check: the macrotask runs it
    expect(ran).toEqual(['a', 'b']);
    d.atTimerCheck();
    expect(ran).toEqual(['a', 'b']);
  });
});
