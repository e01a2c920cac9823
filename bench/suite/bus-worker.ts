/**
 * A bus bench child process (forked by bench/cluster-bus.ts): one subscriber, as one relay
 * of the cluster would be. Commands over IPC, one reply each:
 * - `sub`: subscribe to a subject and count the messages;
 * - `echo`: subscribe and publish every message on to another subject, noting each one's
 *   one-way delay from the send time in its first 8 bytes (CLOCK_MONOTONIC is system-wide);
 * - `count`: messages received, reconnects, and the one-way delays noted since the last `count`;
 * - `close`: leave the bus.
 */
import { type Bus, type BusKind, openBus } from './bus-clients.ts';

type Command =
  | { id: number; t: 'sub'; bus: BusKind; url: string; subject: string }
  | { id: number; t: 'echo'; bus: BusKind; url: string; subject: string; reply: string }
  | { id: number; t: 'count' }
  | { id: number; t: 'close' };

let bus: Bus | null = null;
let received = 0;
let delaysNs: number[] = [];

async function handle(c: Command): Promise<Record<string, unknown>> {
  switch (c.t) {
    case 'sub':
    case 'echo': {
      await bus?.close();
      received = 0;
      delaysNs = [];
      bus = await openBus(c.bus, c.url);
      const b = bus;
      if (c.t === 'sub') await b.subscribe(c.subject, () => void received++);
      else {
        const reply = c.reply;
        await b.subscribe(c.subject, (d) => {
          received++;
          const sent = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0);
          delaysNs.push(Number(process.hrtime.bigint() - sent));
          b.publish(reply, d);
        });
      }
      return {};
    }
    case 'count': {
      const r = { received, reconnects: bus?.reconnects() ?? 0, delaysNs };
      delaysNs = [];
      return r;
    }
    case 'close':
      await bus?.close();
      bus = null;
      return {};
  }
}

process.on('message', (c: Command) => {
  handle(c).then(
    (r) => process.send!({ id: c.id, ...r }),
    (e: unknown) => process.send!({ id: c.id, error: String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
