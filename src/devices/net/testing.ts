/**
 * A virtio-net driver and packet builders for tests, over DriverMock and a memory link pair.
 * Checksums come from src/wire/checksum.ts, which its own tests hold to RFC 1071; the
 * builders here write raw header fields so tests can make any frame, valid or not.
 */
import { DriverMock, type DriverQueue, type DriverRing } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { ringFeatures } from '../testing/ring-layout.ts';
import { memoryLinkPair, type MemoryFrameLink } from '../../backends/memory-frame-link.ts';
import {
  buildEthernet,
  ETH_HLEN,
  ETHERTYPE_IPV4,
  foldSum,
  internetChecksum,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_DST,
  IPV4_HEADER_LEN,
  IPV4_SRC,
  pseudoHeaderSum,
  readU16,
  readU32,
  sumVerifies,
  TCP_ACK,
  TCP_CHECKSUM,
  TCP_HEADER_LEN,
  TCP_PSH,
  UDP_HEADER_LEN,
  verifyTransportChecksum,
  writeU16,
} from '../../wire/index.ts';
import { VirtioNet, type VirtioNetOptions } from './net.ts';
import { encodeNetHdr, parseNetHdr, type VirtioNetHdr } from './hdr.ts';
import { NET_RECEIVEQ, NET_TRANSMITQ, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_SIZE } from './spec.ts';

export const GUEST_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc);
export const PEER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x11, 0x22, 0x33);
export const GUEST_IP = Uint8Array.of(10, 0, 2, 15);
export const PEER_IP = Uint8Array.of(10, 0, 2, 2);

// ---- packet builders ----------------------------------------------------------------------

export function ethernet(payload: Uint8Array, type = ETHERTYPE_IPV4, dst: Uint8Array = PEER_MAC, src: Uint8Array = GUEST_MAC): Uint8Array {
  return buildEthernet({ dst, src, etherType: type, payload });
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
  const p = new Uint8Array(IPV4_HEADER_LEN + spec.payload.length);
  p[0] = 0x45;
  writeU16(p, 2, p.length);
  writeU16(p, 4, spec.id ?? 0x1234);
  writeU16(p, 6, spec.frag ?? 0x4000);
  p[8] = 64;
  p[9] = spec.protocol;
  p.set(spec.src ?? GUEST_IP, IPV4_SRC);
  p.set(spec.dst ?? PEER_IP, IPV4_DST);
  writeU16(p, 10, internetChecksum(p.subarray(0, IPV4_HEADER_LEN)));
  p.set(spec.payload, IPV4_HEADER_LEN);
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

/** A TCP header (no options) and payload, checksum field 0 (finishL4 or partial fill it). */
export function tcp(spec: TcpSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array();
  const t = new Uint8Array(TCP_HEADER_LEN + payload.length);
  const dv = new DataView(t.buffer);
  dv.setUint16(0, spec.srcPort ?? 40000);
  dv.setUint16(2, spec.dstPort ?? 80);
  dv.setUint32(4, (spec.seq ?? 1000) >>> 0);
  dv.setUint32(8, (spec.ack ?? 0) >>> 0);
  t[12] = (TCP_HEADER_LEN / 4) << 4;
  t[13] = spec.flags ?? TCP_PSH | TCP_ACK;
  dv.setUint16(14, 65535);
  t.set(payload, TCP_HEADER_LEN);
  return t;
}

/** A UDP header and payload, checksum field 0. */
export function udp(payload: Uint8Array, srcPort = 5000, dstPort = 53): Uint8Array {
  const u = new Uint8Array(UDP_HEADER_LEN + payload.length);
  const dv = new DataView(u.buffer);
  dv.setUint16(0, srcPort);
  dv.setUint16(2, dstPort);
  dv.setUint16(4, u.length);
  u.set(payload, UDP_HEADER_LEN);
  return u;
}

/** Offset of the L4 checksum field within the L4 header. */
export function l4CsumOffset(protocol: number): number {
  return protocol === IPPROTO_TCP ? TCP_CHECKSUM : protocol === IPPROTO_UDP ? 6 : 2;
}

/** The IPv4 header (assumed 20 bytes, as every builder here makes) and L4 part of a frame. */
function layers(frame: Uint8Array): { ip: Uint8Array; l4: Uint8Array; src: number; dst: number; protocol: number } {
  const ip = frame.subarray(ETH_HLEN);
  return { ip, l4: ip.subarray(IPV4_HEADER_LEN, readU16(ip, 2)), src: readU32(ip, IPV4_SRC), dst: readU32(ip, IPV4_DST), protocol: ip[9] };
}

/** Fill in a correct L4 checksum (TCP, UDP or ICMP) of an Ethernet/IPv4 frame in place. */
export function finishL4(frame: Uint8Array): Uint8Array {
  const { l4, src, dst, protocol } = layers(frame);
  const at = l4CsumOffset(protocol);
  l4[at] = l4[at + 1] = 0;
  let c = internetChecksum(l4, protocol === IPPROTO_ICMP ? 0 : pseudoHeaderSum(src, dst, protocol, l4.length));
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff;
  writeU16(l4, at, c);
  return frame;
}

/**
 * What Linux puts on the wire for CHECKSUM_PARTIAL: the folded pseudo-header sum in the
 * checksum field (not inverted), and csum_start/csum_offset pointing at it.
 */
export function partial(frame: Uint8Array): { frame: Uint8Array; hdr: Partial<VirtioNetHdr> } {
  const { l4, src, dst, protocol } = layers(frame);
  const at = l4CsumOffset(protocol);
  writeU16(l4, at, foldSum(pseudoHeaderSum(src, dst, protocol, l4.length)));
  return { frame, hdr: { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: ETH_HLEN + IPV4_HEADER_LEN, csumOffset: at } };
}

/** Whether an Ethernet/IPv4 frame's IP header and L4 checksums verify. */
export function checksumsOk(frame: Uint8Array): boolean {
  const ip = frame.subarray(ETH_HLEN);
  const ihl = (ip[0] & 15) * 4;
  if (!sumVerifies(ip, 0, ihl)) return false;
  const l4 = ip.subarray(ihl, readU16(ip, 2));
  if (ip[9] === IPPROTO_ICMP) return sumVerifies(l4, 0, l4.length);
  return verifyTransportChecksum(readU32(ip, IPV4_SRC), readU32(ip, IPV4_DST), ip[9], l4);
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
  /** Ring layout the driver negotiates (default split: the queues are then DriverQueues). */
  ring?: RingLayout;
  /** The link's far end takes super-segments up to this (default 0: MTU frames only). */
  superSegmentSendLimit?: number;
}

export class NetHarness<Q extends DriverRing = DriverQueue> {
  /** Frames that reached the far end of the link. */
  readonly wire: Uint8Array[] = [];
  readonly linkChanges: boolean[] = [];

  private constructor(
    readonly driver: DriverMock,
    readonly device: VirtioNet,
    /** The far end: what the relay would be. */
    readonly peer: MemoryFrameLink,
    readonly rxq: Q,
    readonly txq: Q,
  ) {
    peer.attach({ onFrame: (f) => this.wire.push(f), onLinkChange: (up) => this.linkChanges.push(up) });
  }

  static create(opts?: NetHarnessOptions & { ring?: 'split' }): NetHarness<DriverQueue>;
  static create(opts: NetHarnessOptions): NetHarness<DriverRing>;
  static create(opts: NetHarnessOptions = {}): NetHarness<DriverRing> {
    const ring = opts.ring ?? 'split';
    const [near, far] = memoryLinkPair({ up: opts.linkUp ?? true });
    near.superSegmentSendLimit = opts.superSegmentSendLimit ?? 0;
    const device = new VirtioNet({ mac: GUEST_MAC, ...opts, link: near });
    const driver = DriverMock.create(device, { memorySize: opts.memorySize ?? 4 << 20, byteAccess: opts.byteAccess, pci: { ring } });
    const queues = driver.initRings({ features: ringFeatures(opts.features, ring) });
    return new NetHarness<DriverRing>(driver, device, far, queues[NET_RECEIVEQ], queues[NET_TRANSMITQ]);
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
