/**
 * struct virtio_net_config (§5.1.4) as bytes in a ConfigSpace, plus MAC address helpers.
 * All fields are read-only to the driver; status changes come from the link.
 */
import { ConfigSpace } from '../../virtio/config-space.ts';
import { VIRTIO_NET_S_LINK_UP } from './spec.ts';

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

  get linkUp(): boolean {
    return (this.space.getU16(NetConfigOffset.STATUS) & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /** Snapshot restore: the status the driver saw, without telling anyone (it is no change to the driver). */
  restoreLinkUp(up: boolean): void {
    new DataView(this.space.bytes.buffer).setUint16(NetConfigOffset.STATUS, up ? VIRTIO_NET_S_LINK_UP : 0, true);
  }

  /** Returns whether the status field changed. */
  setLinkUp(up: boolean): boolean {
    if (up === this.linkUp) return false;
    this.space.setU16(NetConfigOffset.STATUS, up ? VIRTIO_NET_S_LINK_UP : 0);
    return true;
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
