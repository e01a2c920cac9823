/**
 * A virtio-net driver and packet builders for tests, over DriverMock and a memory link pair.
 * The checksum verifier here is written independently of checksum.ts (concatenate the
 * pseudo header, sum words with plain arithmetic) so the two check each other.
 */
import { DriverMock, type DriverQueue } from '../../virtio/testing/driver-mock.ts';
import { memoryLinkPair, type MemoryFrameLink } from '../../backends/memory-frame-link.ts';
import { VirtioNet, type VirtioNetOptions } from './net.ts';
import { encodeNetHdr, parseNetHdr, type VirtioNetHdr } from './hdr.ts';
import { NET_RECEIVEQ, NET_TRANSMITQ, VIRTIO_NET_HDR_SIZE } from './spec.ts';

export const GUEST_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc);
export const PEER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x11, 0x22, 0x33);
export const GUEST_IP = Uint8Array.of(10, 0, 2, 15);
export const PEER_IP = Uint8Array.of(10, 0, 2, 2);

// ---- packet builders ----------------------------------------------------------------------

export function ethernet(payload: Uint8Array, type = 0x0800, dst: Uint8Array = PEER_MAC, src: Uint8Array = GUEST_MAC): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** Plain 16-bit word sum, folded, straightforward on purpose. */
export function refChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return 0xffff - sum;
}

export interface Ipv4Spec {
  protocol: number;
  payload: Uint8Array;
  id?: number;
  src?: Uint8Array;
  dst?: Uint8Array;
  /** Flags + fragment offset field (default 0x4000: DF). */
  frag?: number;
}

export function ipv4(spec: Ipv4Spec): Uint8Array {
  const p = new Uint8Array(20 + spec.payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = (spec.id ?? 0x1234) >> 8;
  p[5] = (spec.id ?? 0x1234) & 0xff;
  const frag = spec.frag ?? 0x4000;
  p[6] = frag >> 8;
  p[7] = frag & 0xff;
  p[8] = 64;
  p[9] = spec.protocol;
  p.set(spec.src ?? GUEST_IP, 12);
  p.set(spec.dst ?? PEER_IP, 16);
  const c = refChecksum(p.subarray(0, 20));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(spec.payload, 20);
  return p;
}

export interface TcpSpec {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  payload?: Uint8Array;
}

export function tcp(spec: TcpSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array();
  const t = new Uint8Array(20 + payload.length);
  const dv = new DataView(t.buffer);
  dv.setUint16(0, spec.srcPort ?? 40000);
  dv.setUint16(2, spec.dstPort ?? 80);
  dv.setUint32(4, (spec.seq ?? 1000) >>> 0);
  dv.setUint32(8, (spec.ack ?? 0) >>> 0);
  t[12] = 5 << 4;
  t[13] = spec.flags ?? 0x18; // PSH|ACK
  dv.setUint16(14, 65535);
  t.set(payload, 20);
  return t;
}

export function udp(payload: Uint8Array, srcPort = 5000, dstPort = 53): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  const dv = new DataView(u.buffer);
  dv.setUint16(0, srcPort);
  dv.setUint16(2, dstPort);
  dv.setUint16(4, u.length);
  u.set(payload, 8);
  return u;
}

function pseudo(ip: Uint8Array, l4: Uint8Array): Uint8Array {
  const p = new Uint8Array(12 + l4.length);
  p.set(ip.subarray(12, 20), 0);
  p[9] = ip[9];
  p[10] = l4.length >> 8;
  p[11] = l4.length & 0xff;
  p.set(l4, 12);
  return p;
}

/** Offset of the L4 checksum field within the L4 header. */
export function l4CsumOffset(protocol: number): number {
  return protocol === 6 ? 16 : protocol === 17 ? 6 : 2;
}

/** Fill in a correct L4 checksum (TCP, UDP or ICMP) of an Ethernet/IPv4 frame in place. */
export function finishL4(frame: Uint8Array): Uint8Array {
  const ip = frame.subarray(14);
  const l4 = ip.subarray(20, (ip[2] << 8) | ip[3]);
  const at = l4CsumOffset(ip[9]);
  l4[at] = l4[at + 1] = 0;
  let c = refChecksum(ip[9] === 1 ? l4 : pseudo(ip, l4));
  if (c === 0 && ip[9] === 17) c = 0xffff;
  l4[at] = c >> 8;
  l4[at + 1] = c & 0xff;
  return frame;
}

/**
 * What Linux puts on the wire for CHECKSUM_PARTIAL: the folded pseudo-header sum in the
 * checksum field (not inverted), and csum_start/csum_offset pointing at it.
 */
export function partial(frame: Uint8Array): { frame: Uint8Array; hdr: Partial<VirtioNetHdr> } {
  const ip = frame.subarray(14);
  const l4 = ip.subarray(20, (ip[2] << 8) | ip[3]);
  const at = l4CsumOffset(ip[9]);
  const ph = pseudo(ip, new Uint8Array(l4.length)); // pseudo header, zero data
  const folded = 0xffff - refChecksum(ph.subarray(0, 12));
  l4[at] = folded >> 8;
  l4[at + 1] = folded & 0xff;
  return { frame, hdr: { flags: 1, csumStart: 34, csumOffset: at } };
}

/** Whether an Ethernet/IPv4 frame's IP header and L4 checksums verify. */
export function checksumsOk(frame: Uint8Array): boolean {
  const ip = frame.subarray(14);
  const ihl = (ip[0] & 15) * 4;
  if (refChecksum(ip.subarray(0, ihl)) !== 0) return false;
  const l4 = ip.subarray(ihl, (ip[2] << 8) | ip[3]);
  if (ip[9] === 1) return refChecksum(l4) === 0;
  const p = pseudo(ip, l4);
  // pseudo() assumes a 20-byte header for the addresses, as every builder here does.
  return refChecksum(p) === 0;
}

// ---- the harness --------------------------------------------------------------------------

export interface RxFrame {
  hdr: VirtioNetHdr;
  frame: Uint8Array;
  /** Used elements this frame took. */
  buffers: number;
}

export interface NetHarnessOptions extends Partial<Omit<VirtioNetOptions, 'link'>> {
  features?: bigint;
  memorySize?: number;
  linkUp?: boolean;
  byteAccess?: boolean;
}

export class NetHarness {
  /** Frames that reached the far end of the link. */
  readonly wire: Uint8Array[] = [];
  readonly linkChanges: boolean[] = [];

  private constructor(
    readonly driver: DriverMock,
    readonly device: VirtioNet,
    /** The far end: what the relay would be. */
    readonly peer: MemoryFrameLink,
    readonly rxq: DriverQueue,
    readonly txq: DriverQueue,
  ) {
    peer.attach({ onFrame: (f) => this.wire.push(f), onLinkChange: (up) => this.linkChanges.push(up) });
  }

  static create(opts: NetHarnessOptions = {}): NetHarness {
    const [near, far] = memoryLinkPair({ up: opts.linkUp ?? true });
    const device = new VirtioNet({ mac: GUEST_MAC, ...opts, link: near });
    const driver = DriverMock.create(device, { memorySize: opts.memorySize ?? 4 << 20, byteAccess: opts.byteAccess });
    const queues = driver.init({ features: opts.features });
    return new NetHarness(driver, device, far, queues[NET_RECEIVEQ], queues[NET_TRANSMITQ]);
  }

  /** Queue one tx packet (header + frame, split into descriptors at `split`), kick. */
  send(frame: Uint8Array, hdr: Partial<VirtioNetHdr> = {}, split?: readonly number[], indirect = false): void {
    this.add(frame, hdr, split, indirect);
    this.txq.kick();
  }

  add(frame: Uint8Array, hdr: Partial<VirtioNetHdr> = {}, split?: readonly number[], indirect = false): void {
    const bytes = new Uint8Array(VIRTIO_NET_HDR_SIZE + frame.length);
    encodeNetHdr(hdr, bytes);
    bytes.set(frame, VIRTIO_NET_HDR_SIZE);
    const readable: Uint8Array[] = [];
    let at = 0;
    for (const n of split ?? [VIRTIO_NET_HDR_SIZE]) {
      if (at >= bytes.length) break;
      readable.push(bytes.subarray(at, at + n));
      at += n;
    }
    if (at < bytes.length) readable.push(bytes.subarray(at));
    this.txq.add({ readable, indirect });
  }

  /** Post `count` rx buffers of `size` bytes (Linux posts one descriptor each). */
  postRx(count: number, size = VIRTIO_NET_HDR_SIZE + 1518, kick = true): void {
    for (let i = 0; i < count; i++) this.rxq.add({ writable: [size] });
    if (kick) this.rxq.kick();
  }

  /** The peer sends a frame toward the guest. */
  inject(frame: Uint8Array): boolean {
    return this.peer.send(frame);
  }

  /** Received frames, reassembled from used rx buffers by num_buffers. */
  received(): RxFrame[] {
    const used = this.rxq.used();
    const out: RxFrame[] = [];
    for (let i = 0; i < used.length; ) {
      const first = used[i];
      if (first.len < VIRTIO_NET_HDR_SIZE) {
        i++;
        continue;
      }
      const hdr = parseNetHdr(first.data);
      const n = Math.max(1, hdr.numBuffers);
      const parts = [first.data.subarray(VIRTIO_NET_HDR_SIZE), ...used.slice(i + 1, i + n).map((u) => u.data)];
      const total = parts.reduce((s, p) => s + p.length, 0);
      const frame = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
      out.push({ hdr, frame, buffers: n });
      i += n;
    }
    this.driver.recycleBuffers();
    return out;
  }

  /** Completed tx chains (each must have len 0). */
  txDone(): number[] {
    const used = this.txq.used();
    this.driver.recycleBuffers();
    return used.map((u) => u.len);
  }
}
