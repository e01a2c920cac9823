import { describe, expect, it } from 'vitest';
import { macrotask } from './macrotask.ts';

describe('macrotask', () => {
  it('runs a job that a job queued in a later task, not in the same loop', async () => {
    const order: string[] = [];
    await new Promise<void>((done) =>
      macrotask(() => {
        order.push('a');
        queueMicrotask(() => order.push('microtask of a'));
        macrotask(() => {
          order.push('b');
          done();
        });
      }),
    );
    // Had b run in a's task, it would come before a's microtask.
    expect(order).toEqual(['a', 'microtask of a', 'b']);
  });

  it('runs jobs in order, and a throwing job does not stop the others', async () => {
    const order: number[] = [];
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    process.on('uncaughtException', onError);
    try {
      await new Promise<void>((done) => {
        macrotask(() => order.push(1));
        macrotask(() => {
          throw new Error('job failed');
        });
        macrotask(() => order.push(3));
        macrotask(() => setTimeout(done, 10));
      });
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(order).toEqual([1, 3]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['job failed']);
  });
});
