/**
 * A relay's link to the others of its cluster through NATS (core pub/sub for frames and
 * control, a JetStream key-value bucket for leases: cluster-leases.ts). Each room a relay
 * has open gets one switch port for the whole cluster (ClusterRoom): it publishes what the
 * switch floods to the room's `.all` subject and unicast to the relay where the destination
 * MAC was last seen, and feeds what other relays send into the switch, where the usual checks
 * (size, source MAC ownership, the source guard against the cluster-wide leases) apply.
 *
 * The gateway stays local: every relay runs its own at the same addresses with its own NAT,
 * and the switch keeps it and the cluster port apart (switch.ts, localOnly).
 *
 * A relay that dies takes only its clients: the others stop hearing its heartbeats and forget
 * the MACs learned from it; its leases expire with the bucket's max age.
 */
import { randomBytes } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { isMulticastMac, macKey, macToString, parseMac } from '../wire/ethernet.ts';
import { LeaseStore } from './cluster-leases.ts';
import {
  CONTROL_SUBJECT,
  type ControlMessage,
  decodeBatch,
  decodeControl,
  encodeBatch,
  encodeControl,
  frameSubject,
  MAX_BATCH_BYTES,
  MAX_BATCH_FRAMES,
  RELAY_ID_BYTES,
} from './cluster-wire.ts';
import type { LeaseBook, PoolConfig } from './lease-book.ts';
import type { PortSink, SwitchPort, SwitchRoom } from './switch.ts';

export interface ClusterOptions {
  /** nats://HOST:PORT */
  url: string;
  heartbeatMs: number;
  /** A relay not heard from this long is gone: its MACs are forgotten. */
  deadAfterMs: number;
  /** A lease's life without a refresh (see cluster-leases.ts). */
  leaseTtlMs: number;
  /** MACs a room learns from other relays; beyond it new ones are dropped (a peer gone wrong). */
  maxRemoteMacsPerRoom: number;
  /** Remote MACs silent this long are forgotten (frees the table of stale entries). */
  remoteMacIdleMs: number;
  bucket: string;
  log?: (msg: string) => void;
}

export const DEFAULT_CLUSTER_OPTIONS: Omit<ClusterOptions, 'url'> = {
  heartbeatMs: 1000,
  // Generous: a relay busy with a broadcast storm (a room of 500 ARPing at once) went 3.5 s
  // without a heartbeat and its peers forgot its MACs (`npm run bench:relay -- --room-size 500`).
  deadAfterMs: 10_000,
  leaseTtlMs: 60_000,
  maxRemoteMacsPerRoom: 4096,
  remoteMacIdleMs: 10 * 60_000,
  bucket: 'virtio_lab_leases',
};

export type ClusterStats = Record<string, number | string>;

export class ClusterLink {
  readonly id: string;
  private readonly idBytes: Uint8Array;
  readonly options: ClusterOptions;
  private nc: NatsConnection | null = null;
  private leases: LeaseStore | null = null;
  private readonly rooms = new Map<string, ClusterRoom>();
  private readonly peers = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  readonly counters: Record<string, number> = {};
  /** Resolves once connected, the lease bucket open and mirrored; rejects with the reason. */
  readonly ready: Promise<void>;
  private closed = false;

  constructor(options: Partial<ClusterOptions> & { url: string }) {
    this.options = { ...DEFAULT_CLUSTER_OPTIONS, ...options };
    this.idBytes = new Uint8Array(randomBytes(RELAY_ID_BYTES));
    this.id = Buffer.from(this.idBytes).toString('hex');
    this.ready = this.start();
    this.ready.catch((e: Error) => this.options.log?.(`cluster: ${e.message}`));
  }

  count(what: string): void {
    this.counters[what] = (this.counters[what] ?? 0) + 1;
  }

  private async start(): Promise<void> {
    const o = this.options;
    const hostport = o.url.replace(/^nats:\/\//, '');
    // noEcho: our own publishes never come back to our subscriptions.
    const nc = await connect({ servers: hostport, noEcho: true, name: `virtio-lab-relay-${this.id}`, maxReconnectAttempts: -1, reconnectTimeWait: 500 }).catch(
      (e: Error) => {
        throw new Error(`cannot reach NATS at ${o.url}: ${e.message}`);
      },
    );
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    let kv;
    try {
      kv = await new Kvm(nc).create(o.bucket, { history: 1, ttl: o.leaseTtlMs });
    } catch (e) {
      throw new Error(`NATS at ${o.url} has no JetStream (start nats-server with -js): ${(e as Error).message}`);
    }
    this.leases = new LeaseStore(kv, this.id, { ttlMs: o.leaseTtlMs, maxEntries: 200_000 });
    await this.leases.start();
    nc.subscribe(CONTROL_SUBJECT, {
      callback: (err, msg) => {
        if (!err) this.onControl(msg.data);
      },
    });
    for (const r of this.rooms.values()) r.subscribe(nc);
    const hb = setInterval(() => this.heartbeat(), o.heartbeatMs);
    hb.unref();
    this.timers.push(hb);
    this.heartbeat();
    o.log?.(`cluster: relay ${this.id} joined ${o.url}`);
  }

  private lastTick = Date.now();

  private heartbeat(): void {
    this.publishControl({ t: 'hb', relay: this.id });
    const now = Date.now();
    const late = now - this.lastTick > 3 * this.options.heartbeatMs;
    this.lastTick = now;
    // This relay's own loop was stalled: peers' messages may still be waiting in its socket,
    // so silence proves nothing this time.
    if (late) return this.count('heartbeat-late');
    for (const [id, seen] of this.peers) {
      if (now - seen < this.options.deadAfterMs) continue;
      this.peers.delete(id);
      this.count('relay-lost');
      this.options.log?.(`cluster: relay ${id} silent for ${this.options.deadAfterMs} ms: forgetting its MACs`);
      for (const r of this.rooms.values()) r.forgetRelay(id);
    }
    for (const r of this.rooms.values()) r.forgetIdle(now - this.options.remoteMacIdleMs);
  }

  private publishControl(m: ControlMessage): void {
    if (!this.nc || this.nc.isClosed()) return;
    this.nc.publish(CONTROL_SUBJECT, encodeControl(m));
  }

  private onControl(data: Uint8Array): void {
    const m = decodeControl(data);
    if (!m) return this.count('drop-control');
    if (m.relay === this.id) return;
    if (m.t === 'bye') {
      this.peers.delete(m.relay);
      for (const r of this.rooms.values()) r.forgetRelay(m.relay);
      return;
    }
    this.heard(m.relay);
    if (m.t === 'left') this.rooms.get(m.room)?.forgetMac(macKey(parseMac(m.mac)), m.relay);
  }

  /** A peer relay showed a sign of life. */
  heard(relay: string): void {
    if (!this.peers.has(relay)) this.options.log?.(`cluster: relay ${relay} seen`);
    this.peers.set(relay, Date.now());
  }

  isAlive(relay: string): boolean {
    return this.peers.has(relay);
  }

  /** Joins a room: its cluster port on `sw` and its NATS subscriptions. */
  joinRoom(name: string, sw: SwitchRoom, maxFrameBytes: number): ClusterRoom {
    const r = new ClusterRoom(this, name, sw, maxFrameBytes);
    this.rooms.set(name, r);
    if (this.nc) r.subscribe(this.nc);
    return r;
  }

  leaveRoom(r: ClusterRoom): void {
    if (this.rooms.get(r.name) === r) this.rooms.delete(r.name);
  }

  /** The gateway's lease-book factory for a room (null until connected: then a local book). */
  leaseBook(room: string, onSwitch: (mac: number) => boolean): ((pool: PoolConfig, isOurs: (ip: number) => boolean) => LeaseBook) | undefined {
    const store = this.leases;
    return store ? (pool, isOurs) => store.book(room, pool, isOurs, onSwitch) : undefined;
  }

  /** A client of ours left: the others forget its MAC at once (it may come back through them). */
  clientLeft(room: string, mac: Uint8Array): void {
    this.publishControl({ t: 'left', relay: this.id, room, mac: macToString(mac) });
  }

  /** Frames waiting for the end of this event-loop turn, by subject (see cluster-wire.ts). */
  private readonly outbox = new Map<string, { frames: Uint8Array[]; bytes: number }>();
  private flushScheduled = false;

  /** Queues a frame for `subject`; false when not connected (the switch counts it congested). */
  send(subject: string, frame: Uint8Array): boolean {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return false;
    let box = this.outbox.get(subject);
    if (!box) this.outbox.set(subject, (box = { frames: [], bytes: 0 }));
    // Frames in the switch never change after input: holding them until the flush is safe.
    box.frames.push(frame);
    box.bytes += frame.length;
    if (box.bytes >= MAX_BATCH_BYTES || box.frames.length >= MAX_BATCH_FRAMES) this.flushSubject(subject, box);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  private flushSubject(subject: string, box: { frames: Uint8Array[]; bytes: number }): void {
    this.outbox.delete(subject);
    const nc = this.nc;
    if (!nc || nc.isClosed() || box.frames.length === 0) return;
    nc.publish(subject, encodeBatch(this.idBytes, box.frames));
    this.count('batches-out');
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [subject, box] of this.outbox) this.flushSubject(subject, box);
  }

  stats(): ClusterStats {
    let remoteMacs = 0;
    for (const r of this.rooms.values()) remoteMacs += r.remoteMacCount;
    return {
      relay: this.id,
      url: this.options.url,
      connected: this.nc && !this.nc.isClosed() ? 1 : 0,
      peers: this.peers.size,
      rooms: this.rooms.size,
      remoteMacs,
      ...this.counters,
      ...(this.leases ? Object.fromEntries(Object.entries(this.leases.counters).map(([k, v]) => [`leases-${k}`, v])) : {}),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.publishControl({ t: 'bye', relay: this.id });
    this.leases?.close();
    const nc = this.nc;
    this.nc = null;
    await nc?.drain().catch(() => undefined);
  }
}

/** One room's port on the cluster (see ClusterLink). */
export class ClusterRoom implements PortSink {
  readonly port: SwitchPort;
  /** MAC key → the relay it was last seen on, and when. */
  private readonly macs = new Map<number, { relay: string; seen: number }>();
  private readonly subs: Subscription[] = [];
  private readonly allSubject: string;

  constructor(
    private readonly link: ClusterLink,
    readonly name: string,
    private readonly sw: SwitchRoom,
    private readonly maxFrameBytes: number,
  ) {
    this.allSubject = frameSubject(name, 'all');
    this.port = sw.attach(this, { label: 'cluster', remote: true });
  }

  get remoteMacCount(): number {
    return this.macs.size;
  }

  subscribe(nc: NatsConnection): void {
    const cb = (err: Error | null, msg: { data: Uint8Array }) => {
      if (!err) this.onMessage(msg.data);
    };
    this.subs.push(nc.subscribe(this.allSubject, { callback: cb }), nc.subscribe(frameSubject(this.name, this.link.id), { callback: cb }));
  }

  /** From the switch: a frame for the rest of the cluster. */
  deliver(frame: Uint8Array): boolean {
    const to = isMulticastMac(frame, 0) ? undefined : this.macs.get(macKey(frame, 0));
    const subject = to ? frameSubject(this.name, to.relay) : this.allSubject;
    if (!this.link.send(subject, frame)) return false;
    this.link.count(to ? 'frames-out-unicast' : 'frames-out-flood');
    return true;
  }

  private onMessage(data: Uint8Array): void {
    const d = decodeBatch(data, this.maxFrameBytes);
    if ('drop' in d) return this.link.count(`drop-batch-${d.drop}`);
    if (d.from === this.link.id) return;
    this.link.heard(d.from);
    for (const f of d.frames) this.onFrame(d.from, f);
  }

  private onFrame(from: string, frame: Uint8Array): void {
    const src = macKey(frame, 6);
    const known = this.macs.get(src);
    if (!known && this.macs.size >= this.link.options.maxRemoteMacsPerRoom) return this.link.count('drop-remote-macs-full');
    if (known) {
      known.relay = from;
      known.seen = Date.now();
    } else if (!isMulticastMac(frame, 6) && src !== 0) this.macs.set(src, { relay: from, seen: Date.now() });
    this.link.count('frames-in');
    this.port.input(frame);
  }

  forgetMac(key: number, relay?: string): void {
    const m = this.macs.get(key);
    if (!m || (relay !== undefined && m.relay !== relay)) return;
    this.macs.delete(key);
    this.sw.forget(this.port, key);
  }

  forgetRelay(relay: string): void {
    for (const [k, m] of this.macs) if (m.relay === relay) this.forgetMac(k);
  }

  forgetIdle(before: number): void {
    for (const [k, m] of this.macs) if (m.seen < before) this.forgetMac(k);
  }

  leave(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    this.port.detach();
    this.link.leaveRoom(this);
  }
}
