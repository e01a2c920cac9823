/**
 * virtio-net for the inspector: struct virtio_net_config decoded (§5.1.4), frames decoded
 * for the timeline (§5.1.6: virtio_net_hdr, then an Ethernet/IP summary) and control requests
 * with their acks (§5.1.6.5). Read-only and never throws.
 */
import { decodeFrame } from '../../wire/decode.ts';
import { readableBytes, writtenBytes, type Decoded, type RequestDecoder } from '../../virtio/inspect/timeline.ts';
import type { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import type { DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import type { ConfigField } from '../../virtio/inspect/types.ts';
import { configField as field } from '../config-field.ts';
import { formatMac } from './config.ts';
import { CTRL_MAX_REQUEST_BYTES } from './ctrl-budget.ts';
import { describeCtrlCommand, parseCtrlRequest } from './ctrl-command.ts';
import { parseNetHdr, type VirtioNetHdr } from './hdr.ts';
import type { VirtioNet } from './net.ts';
import { NET_CTRLQ, NET_TRANSMITQ, VIRTIO_NET_OK, VIRTIO_NET_S_ANNOUNCE, VIRTIO_NET_S_LINK_UP, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_SIZE } from './spec.ts';

/** Longest frame decoded for a summary: a whole TSO chain (64 KiB + headers), whose payload size the summary shows. */
const NET_DECODE_BYTES = 65_550;

function netDecode(bytes: Uint8Array): { detail: string; fields: Record<string, string | number> } | undefined {
  if (bytes.length < VIRTIO_NET_HDR_SIZE) return undefined;
  const hdr = parseNetHdr(bytes);
  const frame = bytes.subarray(VIRTIO_NET_HDR_SIZE);
  const summary = decodeFrame(frame)?.summary ?? `${frame.length} B (not Ethernet)`;
  return {
    detail: `${hdrText(hdr)}${summary}`,
    fields: { summary, flags: hdr.flags, gsoType: hdr.gsoType, numBuffers: hdr.numBuffers, frameLength: frame.length },
  };
}

/** virtio_net_hdr's flags, GSO and buffer count in brackets, or nothing when all are plain. */
function hdrText(hdr: VirtioNetHdr): string {
  const flags = [hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? 'NEEDS_CSUM' : '', hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID ? 'DATA_VALID' : ''].filter(Boolean).join('|');
  const h = [flags, hdr.gsoType ? `gso ${hdr.gsoType} size ${hdr.gsoSize}` : '', hdr.numBuffers > 1 ? `${hdr.numBuffers} bufs` : ''].filter(Boolean).join(' ');
  return h ? `[${h}] ` : '';
}

/** A control request as the device will read it (an over-long one is refused unread, so it is not read here either). */
function ctrlDecode(bytes: Uint8Array | undefined, length: number): { detail: string; fields: Record<string, string | number> } {
  if (!bytes) return { detail: `control request of ${length} B (over ${CTRL_MAX_REQUEST_BYTES} B: refused)`, fields: { length } };
  const parsed = parseCtrlRequest(bytes);
  const fields = { class: bytes[0] ?? -1, command: bytes[1] ?? -1, length };
  return parsed.ok ? { detail: describeCtrlCommand(parsed.command), fields } : { detail: `malformed: ${parsed.reason}`, fields };
}

/**
 * The timeline's decoder for one NIC. With MRG_RXBUF a packet spans num_buffers used rx
 * buffers and only the first holds the virtio_net_hdr (§5.1.6.4); the rest are payload. The
 * device completes a packet's buffers one after another, so the decoder gathers them (up to
 * NET_DECODE_BYTES) and decodes the packet at its last buffer; the ones before say where
 * they belong. One decoder per NIC: `netDecoder()` makes a fresh one.
 */
class NetDecoder implements RequestDecoder {
  /** The rx packet being gathered: its buffers so far, how many it has, how many are still to come. */
  private parts: Uint8Array[] = [];
  private gathered = 0;
  private buffers = 0;
  private continuing = 0;

  popped(mem: GuardedMemory, queue: number, chain: DescriptorChain): Decoded | undefined {
    if (queue === NET_CTRLQ) {
      const n = chain.readableLength;
      return ctrlDecode(n <= CTRL_MAX_REQUEST_BYTES ? readableBytes(mem, chain, n) : undefined, n);
    }
    if (queue !== NET_TRANSMITQ) return { detail: `rx buffer posted · ${chain.writableLength} B` };
    return netDecode(readableBytes(mem, chain, Math.min(chain.readableLength, NET_DECODE_BYTES)));
  }

  completed(mem: GuardedMemory, queue: number, chain: DescriptorChain | undefined, len: number): Decoded | undefined {
    if (queue === NET_CTRLQ) {
      if (!chain || len < 1) return { detail: 'no ack (no device-writable byte)' };
      const ack = writtenBytes(mem, chain, 1)[0];
      return { detail: ack === VIRTIO_NET_OK ? 'ack VIRTIO_NET_OK' : `ack VIRTIO_NET_ERR (${ack})`, fields: { ack: ack ?? -1 } };
    }
    if (queue === NET_TRANSMITQ) return undefined;
    // A buffer of the packet being gathered counts even if its pop was not seen.
    if (this.continuing > 0) return this.continuation(mem, chain, len);
    if (!chain) return undefined;
    if (len === 0) return { detail: 'returned empty' };
    const bytes = writtenBytes(mem, chain, Math.min(len, NET_DECODE_BYTES));
    if (bytes.length < VIRTIO_NET_HDR_SIZE) return netDecode(bytes);
    const hdr = parseNetHdr(bytes);
    if (hdr.numBuffers <= 1) return netDecode(bytes);
    this.parts = [bytes];
    this.gathered = bytes.length;
    this.buffers = hdr.numBuffers;
    this.continuing = hdr.numBuffers - 1;
    return {
      detail: `${hdrText(hdr)}buffer 1 of ${hdr.numBuffers} · ${len} B (the packet is decoded at its last buffer)`,
      fields: { buffer: 1, numBuffers: hdr.numBuffers, flags: hdr.flags, gsoType: hdr.gsoType, length: len },
    };
  }

  /** A reset ends the packet being gathered: the next completion starts a packet of its own. */
  reset(): void {
    this.parts = [];
    this.continuing = 0;
  }

  private continuation(mem: GuardedMemory, chain: DescriptorChain | undefined, len: number): Decoded {
    const k = this.buffers - --this.continuing;
    const room = NET_DECODE_BYTES - this.gathered;
    if (chain && room > 0 && len > 0) {
      const bytes = writtenBytes(mem, chain, Math.min(len, room));
      this.parts.push(bytes);
      this.gathered += bytes.length;
    }
    const fields = { buffer: k, numBuffers: this.buffers, length: len };
    if (this.continuing > 0) return { detail: `… buffer ${k} of ${this.buffers} · ${len} B of payload`, fields };
    const packet = new Uint8Array(this.gathered);
    let at = 0;
    for (const p of this.parts) {
      packet.set(p, at);
      at += p.length;
    }
    this.parts = [];
    const decoded = netDecode(packet);
    return { detail: `… buffer ${k} of ${this.buffers} · ${len} B, the packet: ${decoded?.detail ?? `${packet.length} B`}`, fields: { ...decoded?.fields, ...fields } };
  }
}

export const netDecoder = (): RequestDecoder => new NetDecoder();

export function netConfigFields(d: VirtioNet): ConfigField[] {
  return [
    field('mac', formatMac(d.mac), '5.1.4'),
    field('status', statusText(d.config.status), '5.1.4'),
    field('max_virtqueue_pairs', 1, '5.1.4'),
    field('mtu', d.mtu, '5.1.4'),
  ];
}

function statusText(status: number): string {
  const bits = [status & VIRTIO_NET_S_LINK_UP ? 'LINK_UP' : 'link down', status & VIRTIO_NET_S_ANNOUNCE ? 'ANNOUNCE' : ''].filter(Boolean).join('|');
  return `${status} (${bits})`;
}

/** The receive filter and offloads the driver set through the control queue (§5.1.6.5), for the inspector's device panel. */
export function netControlFields(d: VirtioNet): ConfigField[] {
  const f = d.control.filter.state;
  const modes = (['promisc', 'allmulti', 'alluni', 'nomulti', 'nouni', 'nobcast'] as const).filter((m) => f[m]);
  const list = (l: { macs: Uint8Array[]; overflow: boolean }) => (l.overflow ? 'all (table overflow)' : l.macs.map(formatMac).join(' ') || 'none');
  return [
    field('rx mode', modes.join(' ') || 'filtered', '5.1.6.5.1'),
    field('unicast table', list(f.unicast), '5.1.6.5.2'),
    field('multicast table', list(f.multicast), '5.1.6.5.2'),
    field('guest offloads', `0x${d.guestOffloads.toString(16)}`, '5.1.6.5.6'),
  ];
}
