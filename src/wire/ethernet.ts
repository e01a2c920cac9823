/**
 * Ethernet II: header layout, EtherTypes, MAC addresses, and the frame sizes the lab's
 * links carry. MAC addresses are 6-byte Uint8Arrays.
 */

/** Header without a VLAN tag: destination, source, EtherType. */
export const ETH_HLEN = 14;
/** The MTU the lab's links carry (the relay's frames, the NIC's default). */
export const DEFAULT_MTU = 1500;
/** Largest frame at DEFAULT_MTU, header included, no FCS. */
export const ETH_MAX_FRAME = ETH_HLEN + DEFAULT_MTU;
/** Ethernet's minimum frame without FCS: shorter frames are zero-padded. */
export const ETH_MIN_FRAME = 60;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
/** IEEE 802.1Q tag protocol id, and 802.1ad's (the outer tag of QinQ). */
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
/** One VLAN tag (TPID + TCI) between the source MAC and the EtherType. */
export const VLAN_HLEN = 4;

/** Whether the frame carries a VLAN tag where the EtherType would be (callers check ETH_HLEN). */
export function isVlanTagged(frame: Uint8Array): boolean {
  const type = etherTypeOf(frame);
  return type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ;
}

/**
 * Longest frame (no FCS) a link of `mtu` carries with `frame`'s header: MTU + 14, or MTU + 18
 * with one VLAN tag (1518 at MTU 1500, Linux's VLAN_ETH_FRAME_LEN): the tag does not count
 * against the MTU. One tag only, as Linux's virtio_net sizes its buffers (GOOD_PACKET_LEN).
 */
export function maxFrameLength(frame: Uint8Array, mtu: number): number {
  return mtu + ETH_HLEN + (frame.length >= ETH_HLEN && isVlanTagged(frame) ? VLAN_HLEN : 0);
}

export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
export const ZERO_MAC: Uint8Array = new Uint8Array(6);

/** "52:55:0a:00:02:02" → bytes; throws on a malformed string (configuration, not guest input). */
export function parseMac(s: string): Uint8Array {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`bad MAC address "${s}"`);
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

export function macToString(b: Uint8Array, offset = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (b[offset + i] ?? 0).toString(16).padStart(2, '0');
  return s;
}

/** The 48-bit MAC at `offset` as a number (exact: < 2^53), handy as a Map key. */
export function macKey(b: Uint8Array, offset = 0): number {
  return (b[offset] * 2 ** 40 + b[offset + 1] * 2 ** 32 + ((b[offset + 2] << 24) >>> 0)) + ((b[offset + 3] << 16) | (b[offset + 4] << 8) | b[offset + 5]);
}

/** macKey's inverse. */
export function macFromKey(k: number): Uint8Array {
  return new Uint8Array([k / 2 ** 40, k / 2 ** 32, k >>> 24, k >>> 16, k >>> 8, k].map((x) => Math.floor(x) & 0xff));
}

/** Group bit set: broadcast or multicast. */
export function isMulticastMac(b: Uint8Array, offset = 0): boolean {
  return (b[offset] & 1) === 1;
}

export function macEquals(a: Uint8Array, b: Uint8Array, aOff = 0, bOff = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** The EtherType of a frame at least ETH_HLEN long (callers check), without parsing it. */
export function etherTypeOf(frame: Uint8Array): number {
  return (frame[12] << 8) | frame[13];
}

export interface EthernetFrame {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
  payload: Uint8Array;
}

/** Views into `frame`; null if it is shorter than a header. */
export function parseEthernet(frame: Uint8Array): EthernetFrame | null {
  if (frame.length < ETH_HLEN) return null;
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    etherType: etherTypeOf(frame),
    payload: frame.subarray(ETH_HLEN),
  };
}

/** `minLength`: zero-pad the frame to at least this many bytes (ETH_MIN_FRAME on the wire). */
export function buildEthernet(f: { dst: Uint8Array; src: Uint8Array; etherType: number; payload: Uint8Array }, minLength = 0): Uint8Array {
  const out = new Uint8Array(Math.max(minLength, ETH_HLEN + f.payload.length));
  out.set(f.dst.subarray(0, 6), 0);
  out.set(f.src.subarray(0, 6), 6);
  out[12] = f.etherType >>> 8;
  out[13] = f.etherType & 0xff;
  out.set(f.payload, ETH_HLEN);
  return out;
}
