import { describe, expect, it } from 'vitest';
import { yieldInThisThread } from './v86-adapter.ts';

/** The part of v86's main-loop object that yielding touches. */
function fakeV86() {
  const calls: number[] = [];
  let workerEnded = 0;
  const v86 = {
    worker: {},
    tick_counter: 0,
    unregister_yield() {
      workerEnded++;
    },
    yield_callback(tick: number) {
      calls.push(tick);
    },
    yield: undefined as unknown as (t: number, tick: number) => void,
  };
  return { v86, calls, ended: () => workerEnded };
}

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('yieldInThisThread: v86 yields within the worker, not through its scheduler worker', () => {
  it('calls back after a 0 ms yield, as a later task; the scheduler worker ends with v86', async () => {
    const f = fakeV86();
    yieldInThisThread(f.v86);
    expect(f.ended()).toBe(0); // its script may still be loading: ending it would abort that
    f.v86.tick_counter = 7;
    f.v86.yield(0, 7);
    expect(f.calls).toEqual([]); // not synchronously: v86 must return to the event loop first
    await later(5);
    expect(f.calls).toEqual([7]);
    f.v86.unregister_yield();
    expect(f.ended()).toBe(1);
  });

  it('sleeps for t ms, and a wake-up replaces a pending sleep (its callback never comes)', async () => {
    const f = fakeV86();
    yieldInThisThread(f.v86);
    f.v86.tick_counter = 1;
    f.v86.yield(40, 1);
    await later(5);
    f.v86.tick_counter = 2;
    f.v86.yield(0, 2);
    await later(80);
    expect(f.calls).toEqual([2]);
    f.v86.tick_counter = 3;
    f.v86.yield(10, 3);
    await later(60);
    expect(f.calls).toEqual([2, 3]);
  });

  it('drops a yield that a later one replaced before its message came', async () => {
    const f = fakeV86();
    yieldInThisThread(f.v86);
    f.v86.tick_counter = 1;
    f.v86.yield(5, 1);
    f.v86.tick_counter = 2;
    f.v86.yield(0, 2);
    await later(40);
    expect(f.calls).toEqual([2]);
  });

  it('leaves v86 alone when it has no scheduler worker (Node)', () => {
    const f = fakeV86();
    f.v86.worker = undefined as unknown as object;
    yieldInThisThread(f.v86);
    expect(f.ended()).toBe(0);
    expect(f.v86.yield).toBeUndefined();
  });
});
