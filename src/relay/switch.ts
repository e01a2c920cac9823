/**
 * A MAC-learning Ethernet switch for one room. Ports are WebSocket clients and the room's
 * gateway. The switch learns source MAC → port, floods broadcast/multicast and unknown
 * unicast to every other port, forwards known unicast to its port. A client port is locked
 * to one source MAC at a time: the first it uses, then the one a guest changes to (`ip link
 * set dev eth0 address …`, which virtio-net's CTRL_MAC_ADDR tells our NIC): the port moves
 * to a new MAC nobody else owns, the old one is forgotten, at most MAC_MOVE_BURST times and
 * then one per MAC_MOVE_REFILL_S; beyond that a frame from another MAC is spoofing (dropped
 * and counted). Frames
 * are size-checked, a port may be rate-limited and its floods limited (token buckets), and a
 * guard (the gateway's) may refuse frames that claim others' IP addresses. Nothing a guest
 * sends can throw out of here: bad frames are counted per reason.
 *
 * Super-segments (src/wire/link-hello.ts): a client port whose NIC offered them
 * (setSuperSegments) may be sent frames up to its offer; every other port gets frames of at
 * most maxFrameBytes (+ a VLAN tag). The gateway (attached with its own maxFrameBytes) may
 * send them, and sizes them for their receiver. A client port the relay allowed to
 * (allowSuperSegmentsIn, after its NIC's tx hello) may send them too: each is checked as one
 * (structure only: a receiver verifies checksums, and a cut does) and goes whole to the
 * gateway (attached with takesSuperSegments: its TCP terminates it) and to ports that offered
 * them, and cut into MTU frames, as the guest's TCP would have sent them, for every other.
 * Work per frame: the check reads its headers; a cut (at most one per frame, however many
 * ports get it) is one checksum pass and at most ⌈65495 / SUPER_SEGMENT_MIN_GSO⌉ = 1024 frames.
 */
import { SUPER_SEGMENT_MAX_FRAME, SUPER_SEGMENT_MIN_OFFER } from '../wire/link-hello.ts';
import { ETH_HLEN, VLAN_HLEN, isMulticastMac, isVlanTagged, macKey, macToString } from '../wire/ethernet.ts';
import { type SuperSegmentView, cutSuperSegment, superSegmentView } from '../wire/super-segment.ts';

export type DropReason =
  | 'runt' // shorter than an Ethernet header
  | 'too-big' // longer than maxFrameBytes
  | 'bad-super-segment' // longer than maxFrameBytes from a port allowed super-segments, but not one (or, cut, its checksum was wrong)
  | 'spoofed' // source MAC differs from the one the port first used
  | 'bad-source' // multicast/broadcast or all-zero source MAC
  | 'mac-in-use' // source MAC already owned by another port
  | 'rate-limited'
  | 'flood-limited' // broadcast/multicast/unknown unicast over the port's flood limit (storm control)
  | 'arp-spoof' // ARP claiming an address that is the gateway's or another MAC's (see SourceGuard)
  | 'ip-spoof' // IPv4 source address that is the gateway's or another MAC's
  | 'congested' // the destination could not take it (e.g. WebSocket send buffer full)
  | 'local-only'; // unicast between a cluster link and a local-only port (the gateway)

export interface PortCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  drops: Partial<Record<DropReason, number>>;
}

export interface PortStats extends PortCounters {
  id: number;
  label: string;
  mac: string | null;
}

export interface RateLimit {
  framesPerSecond: number;
  bytesPerSecond: number;
  /** Bucket size in seconds of traffic (default 1). */
  burstSeconds?: number;
}

/** Something a frame can be delivered to. Return false if it had to drop the frame. */
export interface PortSink {
  deliver(frame: Uint8Array): boolean;
}

export interface AttachOptions {
  label: string;
  /** Lock the port to the first source MAC it sends from (clients: true). */
  lockMac?: boolean;
  /** Pre-set the port's MAC (the gateway): learned at once, and the port is locked to it. */
  mac?: Uint8Array;
  rateLimit?: RateLimit | null;
  /**
   * Storm control: what this port may send that gets flooded (broadcast, multicast, unknown
   * unicast). Every flooded frame costs every port, and guests most: a 20,000 frames/s
   * broadcast flood cost a real guest 33 % of its pings to the gateway.
   */
  floodLimit?: RateLimit | null;
  /**
   * The cluster link: frames of many MACs on other relays. Unlocked (it learns each MAC it
   * carries), and its frames pass the source guard like a client's.
   */
  remote?: boolean;
  /** Exchanges no frames with remote ports: the gateway, whose NAT is this relay's own. */
  localOnly?: boolean;
  /**
   * Largest frame this port may send into the switch (default the room's maxFrameBytes): the
   * gateway's super-segments. At most SUPER_SEGMENT_MAX_FRAME.
   */
  maxFrameBytes?: number;
  /** Takes super-segments of any size whole (the gateway: its TCP terminates them). */
  takesSuperSegments?: boolean;
}

/** A super-segment from a client port on its way through: checked, cut at most once. */
interface SuperSegmentInput {
  view: SuperSegmentView;
  /** The MTU frames it stands for, once a port needed them (null: the cut refused it). */
  cut?: Uint8Array[] | null;
}

/** Whether frames may go between two ports: never between a remote and a local-only one. */
const mayExchange = (a: SwitchPort, b: SwitchPort) =>
  !((a.options.remote && b.options.localOnly) || (a.options.localOnly && b.options.remote));

/**
 * Checks a client's frame after its source MAC passed (`srcKey` is that MAC, locked to the
 * port). Layer 2 locks alone let a client say "10.0.2.2 is at me" and take every guest's
 * traffic to the gateway; whoever knows the addresses (the gateway) says who may claim them.
 */
export type SourceGuard = (frame: Uint8Array, srcKey: number) => DropReason | null;

/**
 * Moves of a client port to a new MAC: a burst of this many, then one per MAC_MOVE_REFILL_S.
 * A guest changes its address rarely; a port flapping between MACs churns every relay's table
 * (and would take a DHCP lease per MAC), so that is bounded.
 */
export const MAC_MOVE_BURST = 4;
export const MAC_MOVE_REFILL_S = 30;
const MAC_MOVES: RateLimit = { framesPerSecond: 1 / MAC_MOVE_REFILL_S, bytesPerSecond: 1, burstSeconds: MAC_MOVE_BURST * MAC_MOVE_REFILL_S };

export interface SwitchOptions {
  /** Largest frame accepted, header included, no FCS. Default 1514 (MTU 1500 + 14). */
  maxFrameBytes: number;
  /** Clock in ms (tests inject one). */
  now?: () => number;
}

export function emptyCounters(): PortCounters {
  return { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, drops: {} };
}

export function countDrop(c: { drops: Partial<Record<string, number>> }, reason: string): void {
  c.drops[reason] = (c.drops[reason] ?? 0) + 1;
}

class TokenBucket {
  private frames: number;
  private bytes: number;
  private last: number;
  constructor(
    private readonly limit: RateLimit,
    now: number,
  ) {
    const burst = limit.burstSeconds ?? 1;
    this.frames = limit.framesPerSecond * burst;
    this.bytes = limit.bytesPerSecond * burst;
    this.last = now;
  }
  take(bytes: number, now: number): boolean {
    const burst = this.limit.burstSeconds ?? 1;
    const dt = Math.max(0, now - this.last) / 1000;
    this.last = now;
    this.frames = Math.min(this.limit.framesPerSecond * burst, this.frames + dt * this.limit.framesPerSecond);
    this.bytes = Math.min(this.limit.bytesPerSecond * burst, this.bytes + dt * this.limit.bytesPerSecond);
    if (this.frames < 1 || this.bytes < bytes) return false;
    this.frames -= 1;
    this.bytes -= bytes;
    return true;
  }
}

export class SwitchPort {
  readonly counters: PortCounters = emptyCounters();
  /** The locked source MAC (key form), or null before the first frame. */
  macKey: number | null = null;
  mac: Uint8Array | null = null;
  attached = true;
  readonly bucket: TokenBucket | null;
  readonly floodBucket: TokenBucket | null;
  /** Moves left to a new MAC (client ports). */
  readonly moveBucket: TokenBucket | null;
  /** Largest super-segment its NIC offered to take (0: none; MTU frames only). */
  superSegmentBytes = 0;
  /** Largest super-segment it may send (0: none), as the relay answered its NIC's tx hello. */
  superSegmentsIn = 0;
  constructor(
    readonly room: SwitchRoom,
    readonly id: number,
    readonly sink: PortSink,
    readonly options: AttachOptions,
    now: number,
  ) {
    this.bucket = options.rateLimit ? new TokenBucket(options.rateLimit, now) : null;
    this.floodBucket = options.floodLimit ? new TokenBucket(options.floodLimit, now) : null;
    this.moveBucket = options.lockMac ? new TokenBucket(MAC_MOVES, now) : null;
    if (options.takesSuperSegments) this.superSegmentBytes = SUPER_SEGMENT_MAX_FRAME;
  }

  /** A frame from this port into the switch. */
  input(frame: Uint8Array): void {
    this.room.input(this, frame);
  }

  /**
   * The NIC's offer (a hello): super-segments of up to `bytes`, or 0 for none. Only a NIC's
   * port takes one: not a cluster link (it carries MTU frames to other processes) nor the
   * gateway's (its MAC is preset; it only sends them). False, and nothing changed, when the
   * offer is out of bounds or not this port's to make.
   */
  setSuperSegments(bytes: number): boolean {
    if (this.options.remote || this.options.mac) return false;
    if (bytes !== 0 && !(Number.isInteger(bytes) && bytes >= SUPER_SEGMENT_MIN_OFFER && bytes <= SUPER_SEGMENT_MAX_FRAME)) return false;
    this.superSegmentBytes = bytes;
    return true;
  }

  /**
   * The NIC's tx hello: it would send super-segments of up to `bytes`. Returns what it may
   * send (the answer the relay gives): `bytes` for a NIC's port and a valid size, else 0.
   */
  allowSuperSegmentsIn(bytes: number): number {
    const valid = Number.isInteger(bytes) && bytes >= SUPER_SEGMENT_MIN_OFFER && bytes <= SUPER_SEGMENT_MAX_FRAME;
    this.superSegmentsIn = valid && !this.options.remote && !this.options.mac ? bytes : 0;
    return this.superSegmentsIn;
  }

  detach(): void {
    this.room.detach(this);
  }

  stats(): PortStats {
    return {
      id: this.id,
      label: this.options.label,
      mac: this.mac ? macToString(this.mac) : null,
      ...this.counters,
      drops: { ...this.counters.drops },
    };
  }
}

export interface RoomStats {
  name: string;
  ports: PortStats[];
  macTableSize: number;
  /** Frames that entered the switch (from any port) / were flooded / forwarded unicast. */
  framesIn: number;
  bytesIn: number;
  flooded: number;
  forwarded: number;
  /** Known unicast addressed back to its own sender: dropped silently. */
  hairpin: number;
  /** Client ports that moved to a new MAC (a guest changed its address). */
  macMoves: number;
  drops: Partial<Record<DropReason, number>>;
}

export class SwitchRoom {
  private readonly ports = new Set<SwitchPort>();
  private readonly table = new Map<number, SwitchPort>();
  private nextId = 1;
  private readonly now: () => number;
  /** Applied to frames from client (lockMac) ports; set by the room's gateway. */
  guard: SourceGuard | null = null;
  /** Told when a client port moved from one MAC to another (the relay: its gateway and cluster forget the old one). */
  onMacMoved: ((port: SwitchPort, from: Uint8Array) => void) | null = null;
  private readonly totals = { framesIn: 0, bytesIn: 0, flooded: 0, forwarded: 0, hairpin: 0, macMoves: 0, drops: {} as Partial<Record<DropReason, number>> };

  constructor(
    readonly name: string,
    private readonly options: SwitchOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.ports.size;
  }

  /** Ports that are clients (not the gateway): those attached with lockMac. */
  get clientCount(): number {
    let n = 0;
    for (const p of this.ports) if (p.options.lockMac) n++;
    return n;
  }

  /** Whether a port currently owns this MAC (key form). */
  hasMac(key: number): boolean {
    return this.table.has(key);
  }

  attach(sink: PortSink, options: AttachOptions): SwitchPort {
    const port = new SwitchPort(this, this.nextId++, sink, options, this.now());
    if (options.mac) {
      const key = macKey(options.mac);
      port.mac = options.mac.slice(0, 6);
      port.macKey = key;
      this.table.set(key, port);
    }
    this.ports.add(port);
    return port;
  }

  /**
   * The largest frame the port owning this MAC (key form) takes: its super-segment offer, or
   * the room's MTU frame. What the gateway's TCP sizes its segments by.
   */
  frameLimitFor(key: number): number {
    const port = this.table.get(key);
    return Math.max(this.options.maxFrameBytes, port?.attached ? port.superSegmentBytes : 0);
  }

  /** Whether a client port of this relay (not the cluster link) owns this MAC. */
  hasLocalMac(key: number): boolean {
    return this.table.get(key)?.options.lockMac === true;
  }

  /** Forgets a MAC learned on `port` (a cluster link whose relay said the MAC left, or died). */
  forget(port: SwitchPort, key: number): void {
    if (this.table.get(key) === port) this.table.delete(key);
  }

  detach(port: SwitchPort): void {
    if (!port.attached) return;
    port.attached = false;
    this.ports.delete(port);
    if (port.macKey !== null && this.table.get(port.macKey) === port) this.table.delete(port.macKey);
  }

  private drop(port: SwitchPort, reason: DropReason): void {
    countDrop(port.counters, reason);
    countDrop(this.totals, reason);
  }

  input(port: SwitchPort, frame: Uint8Array): void {
    if (!port.attached) return;
    port.counters.framesIn++;
    port.counters.bytesIn += frame.length;
    this.totals.framesIn++;
    this.totals.bytesIn += frame.length;
    if (frame.length < ETH_HLEN) return this.drop(port, 'runt');
    // An 802.1Q tag does not count against the MTU: a tagged frame may be 4 bytes longer.
    const limit = Math.min(port.options.maxFrameBytes ?? this.options.maxFrameBytes, SUPER_SEGMENT_MAX_FRAME);
    let big: SuperSegmentInput | undefined;
    if (frame.length > limit + (isVlanTagged(frame) ? VLAN_HLEN : 0)) {
      if (frame.length > port.superSegmentsIn) return this.drop(port, 'too-big');
      const view = superSegmentView(frame, this.options.maxFrameBytes - ETH_HLEN, false);
      if (typeof view === 'string') return this.drop(port, 'bad-super-segment');
      big = { view };
    }
    if (port.bucket && !port.bucket.take(frame.length, this.now())) return this.drop(port, 'rate-limited');

    // Source MAC: no group bit, not all zero; then the port's lock, then ownership.
    if (isMulticastMac(frame, 6)) return this.drop(port, 'bad-source');
    const src = macKey(frame, 6);
    if (src === 0) return this.drop(port, 'bad-source');
    if (port.macKey === null) {
      const owner = this.table.get(src);
      if (owner && owner !== port) return this.drop(port, 'mac-in-use');
      if (port.options.lockMac || port.options.mac) {
        port.macKey = src;
        port.mac = frame.slice(6, 12);
      }
      this.table.set(src, port);
    } else if (port.macKey !== src) {
      // The gateway's MAC is fixed; a client's may move (see move()).
      if (port.options.mac && !port.options.lockMac) return this.drop(port, 'spoofed');
      const refused = this.move(port, src, frame);
      if (refused) return this.drop(port, refused);
    }
    if (this.guard && (port.options.lockMac || port.options.remote)) {
      const bad = this.guard(frame, src);
      if (bad) return this.drop(port, bad);
    }

    if (!isMulticastMac(frame, 0)) {
      const dst = this.table.get(macKey(frame, 0));
      if (dst) {
        if (dst === port) {
          this.totals.hairpin++;
          return;
        }
        if (!mayExchange(port, dst)) return this.drop(port, 'local-only');
        this.totals.forwarded++;
        this.send(dst, frame, big);
        return;
      }
    }
    if (port.floodBucket && !port.floodBucket.take(frame.length, this.now())) return this.drop(port, 'flood-limited');
    this.totals.flooded++;
    for (const p of [...this.ports]) if (p !== port && p.attached && mayExchange(port, p)) this.send(p, frame, big);
  }

  /** A client port's frame from a MAC other than its own: move the port there, or say why not. */
  private move(port: SwitchPort, src: number, frame: Uint8Array): DropReason | null {
    const owner = this.table.get(src);
    if (owner && owner !== port) return 'mac-in-use';
    if (!port.moveBucket?.take(0, this.now())) return 'spoofed';
    const from = port.mac!;
    if (this.table.get(port.macKey!) === port) this.table.delete(port.macKey!);
    port.macKey = src;
    port.mac = frame.slice(6, 12);
    this.table.set(src, port);
    this.totals.macMoves++;
    this.onMacMoved?.(port, from);
    return null;
  }

  private send(port: SwitchPort, frame: Uint8Array, big?: SuperSegmentInput): void {
    // Stock clients (and the cluster link) never see more than the MTU frame: a client's
    // super-segment is cut for them (the gateway sized its own for the receiver).
    if (frame.length > this.options.maxFrameBytes + (isVlanTagged(frame) ? VLAN_HLEN : 0) && frame.length > port.superSegmentBytes) {
      if (!big) return this.drop(port, 'too-big');
      if (big.cut === undefined) big.cut = cutSuperSegment(frame, big.view, this.options.maxFrameBytes) ?? null;
      if (!big.cut) return this.drop(port, 'bad-super-segment');
      for (const f of big.cut) this.deliver(port, f);
      return;
    }
    this.deliver(port, frame);
  }

  private deliver(port: SwitchPort, frame: Uint8Array): void {
    if (port.sink.deliver(frame)) {
      port.counters.framesOut++;
      port.counters.bytesOut += frame.length;
    } else this.drop(port, 'congested');
  }

  stats(): RoomStats {
    return {
      name: this.name,
      ports: [...this.ports].map((p) => p.stats()),
      macTableSize: this.table.size,
      framesIn: this.totals.framesIn,
      bytesIn: this.totals.bytesIn,
      flooded: this.totals.flooded,
      forwarded: this.totals.forwarded,
      hairpin: this.totals.hairpin,
      macMoves: this.totals.macMoves,
      drops: { ...this.totals.drops },
    };
  }
}
