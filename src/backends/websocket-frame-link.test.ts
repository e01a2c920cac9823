import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { WebSocketFrameLink, type WebSocketLike } from './websocket-frame-link.ts';

/** A scriptable socket: the test opens, closes and feeds it. */
class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  sent: Array<Uint8Array | string> = [];
  onopen: WebSocketLike['onopen'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: Uint8Array | string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop() {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({});
  }
}

function fakeTimers() {
  const timers: Array<{ fn: () => void; ms: number }> = [];
  return {
    timers,
    setTimeout: (fn: () => void, ms: number) => timers.push({ fn, ms }),
    clearTimeout: () => {},
    fire() {
      timers.shift()!.fn();
    },
  };
}

describe('WebSocketFrameLink (fake socket)', () => {
  it('says send() copies only for the platform WebSocket (the HTML standard copies), or when told', () => {
    expect(new WebSocketFrameLink('ws://x', FakeSocket).sendCopies).toBe(false);
    expect(new WebSocketFrameLink('ws://x', FakeSocket, { sendCopies: true }).sendCopies).toBe(true);
    const platform = globalThis as { WebSocket?: unknown };
    const had = Object.getOwnPropertyDescriptor(platform, 'WebSocket');
    platform.WebSocket = FakeSocket;
    try {
      expect(new WebSocketFrameLink('ws://x', FakeSocket).sendCopies).toBe(true);
    } finally {
      if (had) Object.defineProperty(platform, 'WebSocket', had);
      else delete platform.WebSocket;
    }
  });

  it('says why it is down: unreachable or closed by the server, with the URL and the retry delay', () => {
    FakeSocket.all = [];
    const t = fakeTimers();
    const problems: Array<[string | undefined, number | undefined]> = [];
    const link = new WebSocketFrameLink('ws://relay.example/relay/lab', FakeSocket, {
      random: () => 1,
      minBackoffMs: 300,
      onProblem: (p, ms) => problems.push([p, ms]),
      ...t,
    });
    link.attach({ onFrame: () => {}, onLinkChange: () => {} });
    FakeSocket.all[0].drop();
    expect(problems).toEqual([['ws://relay.example/relay/lab: unreachable (could not connect)', 300]]);
    t.fire();
    FakeSocket.all[1].open();
    expect(problems.at(-1)).toEqual([undefined, undefined]);
    FakeSocket.all[1].onclose?.({ code: 4000 });
    expect(problems.at(-1)).toEqual(['ws://relay.example/relay/lab: closed by the server (code 4000)', 300]);
    link.close();
  });

  it('reports link state, frames in and out, drops while down and when buffered too much', () => {
    FakeSocket.all = [];
    const link = new WebSocketFrameLink('ws://relay/relay/lab', FakeSocket, { maxBufferedBytes: 100, sendSuperSegments: false });
    const events: string[] = [];
    const frames: Uint8Array[] = [];
    link.attach({ onFrame: (f) => frames.push(f), onLinkChange: (up) => events.push(up ? 'up' : 'down') });
    const ws = FakeSocket.all[0];
    expect(ws.binaryType).toBe('arraybuffer');
    expect(link.send(new Uint8Array(60))).toBe(false);
    expect(link.stats.dropsDown).toBe(1);
    ws.open();
    expect(link.up).toBe(true);
    expect(link.send(Uint8Array.of(1, 2))).toBe(true);
    expect(ws.sent).toEqual([Uint8Array.of(1, 2)]);
    ws.bufferedAmount = 101;
    expect(link.send(Uint8Array.of(3))).toBe(false);
    expect(link.stats.dropsBuffered).toBe(1);
    ws.onmessage?.({ data: Uint8Array.of(9, 9).buffer });
    ws.onmessage?.({ data: 'text is not a frame' });
    ws.onmessage?.({ data: new ArrayBuffer(0) });
    expect(frames).toEqual([Uint8Array.of(9, 9)]);
    expect(link.stats.badMessages).toBe(2);
    expect(events).toEqual(['up']);
    link.close();
    expect(events).toEqual(['up', 'down']);
  });

  it('reconnects with exponential backoff, capped, with jitter, reset after a successful open', () => {
    const link2Timers = fakeTimers();
    FakeSocket.all = [];
    const l2 = new WebSocketFrameLink('ws://x', FakeSocket, { minBackoffMs: 250, maxBackoffMs: 2000, random: () => 1, ...link2Timers });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      FakeSocket.all.at(-1)!.drop();
      delays.push(link2Timers.timers[0].ms);
      link2Timers.fire();
    }
    expect(delays).toEqual([250, 500, 1000, 2000, 2000, 2000]);
    FakeSocket.all.at(-1)!.open();
    FakeSocket.all.at(-1)!.drop();
    expect(link2Timers.timers[0].ms).toBe(250);
    expect(l2.backoffMs(1)).toBe(250);
    const jittery = new WebSocketFrameLink('ws://x', FakeSocket, { random: () => 0, ...fakeTimers() });
    expect(jittery.backoffMs(3)).toBe(500); // 1000 × 0.5
    for (const l of [l2, jittery]) l.close();
  });

  it('sends the super-segment hello when offered, after every reconnect, and a withdrawal', () => {
    FakeSocket.all = [];
    const t = fakeTimers();
    const link = new WebSocketFrameLink('ws://x', FakeSocket, { random: () => 1, sendSuperSegments: false, ...t });
    link.attach({ onFrame: () => {}, onLinkChange: () => {} });
    link.offerSuperSegments(65549); // down: remembered, nothing sent
    const first = FakeSocket.all[0];
    expect(first.sent).toEqual([]);
    first.open();
    expect(first.sent).toEqual(['virtio-lab rx-tcp4 65549']);
    link.offerSuperSegments(65549); // no change: nothing more
    expect(first.sent).toHaveLength(1);
    first.drop();
    t.fire();
    const second = FakeSocket.all[1];
    second.open();
    expect(second.sent).toEqual(['virtio-lab rx-tcp4 65549']);
    link.offerSuperSegments(0);
    expect(second.sent).toEqual(['virtio-lab rx-tcp4 65549', 'virtio-lab rx-tcp4 0']);
    second.drop();
    t.fire();
    FakeSocket.all[2].open();
    expect(FakeSocket.all[2].sent).toEqual([]); // withdrawn: a new port needs no hello
    expect(link.stats.hellosSent).toBe(3);
    expect(() => link.offerSuperSegments(1514)).toThrow(RangeError);
    link.close();
  });

  it('asks every connection to take super-segments, and sends them only up to what its answer allows', () => {
    FakeSocket.all = [];
    const t = fakeTimers();
    const link = new WebSocketFrameLink('ws://x', FakeSocket, { random: () => 1, ...t });
    link.attach({ onFrame: () => {}, onLinkChange: () => {} });
    const first = FakeSocket.all[0];
    first.open();
    expect(first.sent).toEqual(['virtio-lab tx-tcp4 65549']);
    expect(link.superSegmentSendLimit).toBe(0); // no answer yet: MTU frames
    first.onmessage?.({ data: 'virtio-lab tx-tcp4 20000' });
    expect(link.superSegmentSendLimit).toBe(20000);
    first.onmessage?.({ data: 'virtio-lab tx-tcp4 99999' }); // out of bounds: ignored
    first.onmessage?.({ data: 'virtio-lab rx-tcp4 20000' }); // not the relay's to send
    expect(link.superSegmentSendLimit).toBe(20000);
    expect(link.stats.badMessages).toBe(2);
    first.onmessage?.({ data: 'virtio-lab tx-tcp4 0' });
    expect(link.superSegmentSendLimit).toBe(0);
    first.onmessage?.({ data: 'virtio-lab tx-tcp4 65549' });
    expect(link.superSegmentSendLimit).toBe(65549);
    first.drop(); // a new connection is a new port: nothing allowed until it answers
    expect(link.superSegmentSendLimit).toBe(0);
    t.fire();
    FakeSocket.all[1].open();
    expect(link.superSegmentSendLimit).toBe(0);
    expect(FakeSocket.all[1].sent).toEqual(['virtio-lab tx-tcp4 65549']);
    link.close();
  });

  it('close() stops reconnecting', () => {
    FakeSocket.all = [];
    const t = fakeTimers();
    const link = new WebSocketFrameLink('ws://x', FakeSocket, t);
    link.close();
    expect(t.timers.length).toBe(0);
    expect(FakeSocket.all.length).toBe(1);
  });
});

describe('WebSocketFrameLink (ws server)', () => {
  let server: WebSocketServer | undefined;
  let link: WebSocketFrameLink | undefined;
  afterEach(async () => {
    link?.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  });

  const listen = (port = 0) =>
    new Promise<WebSocketServer>((resolve) => {
      const s: WebSocketServer = new WebSocketServer({ host: '127.0.0.1', port }, () => resolve(s));
    });
  const until = async (cond: () => boolean, ms = 5000) => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > ms) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('one binary message per frame both ways; goes down and comes back when the server restarts', async () => {
    server = await listen();
    const port = (server.address() as AddressInfo).port;
    const atServer: Buffer[] = [];
    const onConnection = (ws: WebSocket) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) return; // the tx hello: this server does not answer it
        atServer.push(data);
        ws.send(Uint8Array.of(0xee, ...data), { binary: true });
      });
    };
    server.on('connection', onConnection);
    link = new WebSocketFrameLink(`ws://127.0.0.1:${port}/relay/lab`, WebSocket, { minBackoffMs: 20, maxBackoffMs: 100 });
    const frames: Uint8Array[] = [];
    const states: boolean[] = [];
    link.attach({ onFrame: (f) => frames.push(f), onLinkChange: (up) => states.push(up) });
    await until(() => link!.up);
    link.send(Uint8Array.of(1, 2, 3));
    await until(() => frames.length === 1);
    expect(Array.from(atServer[0])).toEqual([1, 2, 3]);
    expect(frames[0]).toEqual(Uint8Array.of(0xee, 1, 2, 3));

    for (const c of server.clients) c.terminate();
    await new Promise<void>((r) => server!.close(() => r()));
    await until(() => !link!.up);
    expect(link.send(Uint8Array.of(4))).toBe(false);
    server = await listen(port);
    server.on('connection', onConnection);
    await until(() => link!.up);
    expect(states).toEqual([true, false, true]);
    link.send(Uint8Array.of(5));
    await until(() => frames.length === 2);
    expect(link.stats.opens).toBe(2);
  });
});
