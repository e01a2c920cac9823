/** The writer's side: message checks, order, and the syncs it makes on its own when idle. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBlockBackend } from '../memory-block-backend.ts';
import { serveWriter } from './serve-writer.ts';
import type { ToWriter, WriterDone } from './protocol.ts';

const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

function writer(syncBehindBytes?: number) {
  const medium = new MemoryBlockBackend(1 << 20, { trackDurability: true });
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  serveWriter(port2, medium, { syncBehindBytes });
  const answers: WriterDone[] = [];
  port1.onmessage = (e: MessageEvent<WriterDone>) => answers.push(e.data);
  const send = (m: ToWriter) => port1.postMessage(m, m.type === 'write' ? [m.buffer] : []);
  return { medium, answers, send };
}

const batch = (seq: number, runs: number[], fillByte: number) => {
  const buffer = new ArrayBuffer(runs.filter((_, i) => i % 2 === 1).reduce((a, b) => a + b, 0));
  new Uint8Array(buffer).fill(fillByte);
  return { type: 'write' as const, seq, buffer, runs };
};

describe('serveWriter', () => {
  it('stores runs from one buffer in order, hands the buffer back, and refuses runs outside the disk or the buffer', async () => {
    const { medium, answers, send } = writer();
    send(batch(1, [0, 512, 4096, 1024], 7));
    send({ type: 'write', seq: 2, buffer: new ArrayBuffer(512), runs: [(1 << 20) - 256, 512] });
    send({ type: 'write', seq: 3, buffer: new ArrayBuffer(512), runs: [0, 1024] });
    send({ type: 'flush', seq: 4 });
    await vi.waitFor(() => expect(answers.length).toBe(4));
    expect(answers.map((a) => [a.seq, a.error?.kind])).toEqual([[1, undefined], [2, 'range'], [3, 'range'], [4, 'range']]);
    expect(answers[0]!.buffer?.byteLength).toBe(1536);
    expect(medium.bytes[511]).toBe(7);
    expect(medium.bytes[512]).toBe(0);
    expect(medium.bytes[4096 + 1023]).toBe(7);
    expect(medium.bytes[0 + 1023]).toBe(0); // the refused run stored nothing
  });

  it('syncs on its own once enough is stored and nothing waits; an explicit flush still syncs', async () => {
    const { medium, answers, send } = writer(8192);
    send(batch(1, [0, 4096], 1));
    await vi.waitFor(() => expect(answers.length).toBe(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(medium.counts.flush).toBe(0); // 4 KiB: below the threshold
    send(batch(2, [8192, 4096], 2));
    await vi.waitFor(() => expect(medium.counts.flush).toBe(1));
    expect(medium.durable![8192]).toBe(2);
    send({ type: 'flush', seq: 3 });
    await vi.waitFor(() => expect(answers.length).toBe(3));
    expect(answers[2]!.error).toBeUndefined();
    expect(medium.counts.flush).toBe(2);
  });
});
