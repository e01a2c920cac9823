/**
 * struct virtio_net_config (§5.1.4) as bytes in a ConfigSpace, plus MAC address helpers.
 * All fields are read-only to the driver; status changes come from the link (LINK_UP) and the
 * device's announce requests (ANNOUNCE), the MAC from the driver's own MAC_ADDR_SET.
 */
import { ConfigSpace } from '../../virtio/config-space.ts';
import { VIRTIO_NET_S_ANNOUNCE, VIRTIO_NET_S_LINK_UP } from './spec.ts';

export const NetConfigOffset = {
  MAC: 0, // u8[6]
  STATUS: 6, // le16
  MAX_VIRTQUEUE_PAIRS: 8, // le16 (meaningful with MQ only)
  MTU: 10, // le16
} as const;

/** Up to and including mtu: speed/duplex and RSS fields exist only with features we do not offer. */
export const NET_CONFIG_SIZE = 12;

export class NetConfig {
  readonly space = new ConfigSpace(NET_CONFIG_SIZE);

  constructor(mac: Uint8Array, mtu: number) {
    this.space.bytes.set(mac, NetConfigOffset.MAC);
    this.space.setU16(NetConfigOffset.MAX_VIRTQUEUE_PAIRS, 1);
    this.space.setU16(NetConfigOffset.MTU, mtu);
  }

  get status(): number {
    return this.space.getU16(NetConfigOffset.STATUS);
  }

  get linkUp(): boolean {
    return (this.status & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  get announcePending(): boolean {
    return (this.status & VIRTIO_NET_S_ANNOUNCE) !== 0;
  }

  /** Snapshot restore: the link status the driver saw, without telling anyone (it is no change to the driver). */
  restoreLinkUp(up: boolean): void {
    this.writeSilently(NetConfigOffset.STATUS, up ? VIRTIO_NET_S_LINK_UP : 0);
  }

  /** Returns whether the status field changed (the ConfigSpace then raises the config change). */
  setLinkUp(up: boolean): boolean {
    if (up === this.linkUp) return false;
    this.space.setU16(NetConfigOffset.STATUS, (this.status & ~VIRTIO_NET_S_LINK_UP) | (up ? VIRTIO_NET_S_LINK_UP : 0));
    return true;
  }

  /** Ask the driver to announce itself (§5.1.6.5.4): ANNOUNCE set, a config change. False when one is pending already. */
  requestAnnounce(): boolean {
    if (this.announcePending) return false;
    this.space.setU16(NetConfigOffset.STATUS, this.status | VIRTIO_NET_S_ANNOUNCE);
    return true;
  }

  /** The driver's ANNOUNCE_ACK (or a reset): cleared without a config change, the driver asked for it. */
  clearAnnounce(): void {
    this.writeSilently(NetConfigOffset.STATUS, this.status & ~VIRTIO_NET_S_ANNOUNCE);
  }

  /** MAC_ADDR_SET (§5.1.6.5.2: the config field changes before the command completes), or a reset; the driver's own doing, so silent. */
  setMac(mac: Uint8Array): void {
    this.space.bytes.set(mac.subarray(0, 6), NetConfigOffset.MAC);
  }

  private writeSilently(offset: number, value: number): void {
    new DataView(this.space.bytes.buffer).setUint16(offset, value, true);
  }
}

// ---- MAC addresses ------------------------------------------------------------------------

/** "02:ab:..." or "02-ab-..." → 6 bytes; throws on anything else. */
export function parseMac(text: string): Uint8Array {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`"${text}" is not a MAC address (expected six hex bytes like 02:00:00:12:34:56)`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Accept either form; a MAC must be unicast (I/G bit clear) to be a NIC's address. */
export function toMac(mac: Uint8Array | string): Uint8Array {
  const bytes = typeof mac === 'string' ? parseMac(mac) : Uint8Array.from(mac);
  if (bytes.length !== 6) throw new RangeError(`a MAC address has 6 bytes, got ${bytes.length}`);
  if (bytes[0] & 1) throw new RangeError(`${formatMac(bytes)} is a multicast address, not a NIC's`);
  return bytes;
}

/**
 * A locally administered unicast MAC (first byte x2/x6/xA/xE), from `seed` bytes when given
 * (e.g. a per-disk or per-tab random id, so the address and thus the DHCP lease stay
 * stable across reloads), else random.
 */
export function localMac(seed?: Uint8Array): Uint8Array {
  const mac = new Uint8Array(6);
  if (seed && seed.length > 0) {
    // FNV-1a spread over 6 bytes: stable, cheap, no crypto.subtle (async) needed.
    let h = 0x811c9dc5;
    for (let i = 0; i < 6; i++) {
      for (const b of seed) h = Math.imul(h ^ b ^ i, 0x01000193) >>> 0;
      mac[i] = h & 0xff;
    }
  } else {
    globalThis.crypto.getRandomValues(mac);
  }
  mac[0] = (mac[0] & 0xfc) | 0x02;
  return mac;
}
