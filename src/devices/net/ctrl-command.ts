/**
 * Control-queue requests (§5.1.6.5) parsed from the device-readable bytes of a chain: class,
 * command and exactly the data that command takes. Pure and total: anything else is a reason,
 * which the device answers with VIRTIO_NET_ERR. Feature checks are the device's (ctrl.ts); the
 * inspector shares this parser.
 */
import { formatMac } from './config.ts';
import { CTRL_MAX_REQUEST_BYTES, MAC_TABLE_ENTRIES } from './ctrl-budget.ts';
import { NetCtrlClass as C, NetCtrlMac, NetCtrlRx, VIRTIO_NET_CTRL_ANNOUNCE_ACK, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET } from './spec.ts';

/** struct virtio_net_ctrl_mac (§5.1.6.5.2): le32 entries, then 6 bytes each, once per list. */
export interface MacList {
  /** At most MAC_TABLE_ENTRIES addresses, 6 bytes each. */
  macs: Uint8Array[];
  /** The list had more than MAC_TABLE_ENTRIES: every address of its kind passes. */
  overflow: boolean;
}

export type CtrlCommand =
  | { kind: 'rx'; command: number; on: boolean }
  | { kind: 'mac-table'; unicast: MacList; multicast: MacList }
  | { kind: 'mac-addr'; mac: Uint8Array }
  | { kind: 'announce-ack' }
  | { kind: 'guest-offloads'; offloads: bigint };

export type ParsedCtrl = { ok: true; command: CtrlCommand } | { ok: false; reason: string };

const RX_NAMES = ['PROMISC', 'ALLMULTI', 'ALLUNI', 'NOMULTI', 'NOUNI', 'NOBCAST'];
const CLASS_NAMES = ['RX', 'MAC', 'VLAN', 'ANNOUNCE', 'MQ', 'GUEST_OFFLOADS'];

const bad = (reason: string): ParsedCtrl => ({ ok: false, reason });

function dataLength(name: string, data: Uint8Array, want: number): string | undefined {
  return data.length === want ? undefined : `${name} takes ${want} bytes of data, got ${data.length}`;
}

/** One MAC list at `at`; undefined when it runs past the data. */
function readMacList(data: Uint8Array, at: number): { list: MacList; end: number } | undefined {
  if (at + 4 > data.length) return undefined;
  const entries = new DataView(data.buffer, data.byteOffset + at, 4).getUint32(0, true);
  // Checked against the bytes present before anything is copied: a huge count costs nothing.
  if (entries > (data.length - at - 4) / 6) return undefined;
  const kept = Math.min(entries, MAC_TABLE_ENTRIES);
  const macs = Array.from({ length: kept }, (_, i) => data.slice(at + 4 + 6 * i, at + 10 + 6 * i));
  return { list: { macs, overflow: entries > MAC_TABLE_ENTRIES }, end: at + 4 + 6 * entries };
}

/** Parse a request's readable bytes (already at most CTRL_MAX_REQUEST_BYTES). */
export function parseCtrlRequest(bytes: Uint8Array): ParsedCtrl {
  if (bytes.length > CTRL_MAX_REQUEST_BYTES) return bad(`request of ${bytes.length} bytes, at most ${CTRL_MAX_REQUEST_BYTES}`);
  if (bytes.length < 2) return bad(`request of ${bytes.length} bytes has no class and command`);
  const cls = bytes[0]!;
  const cmd = bytes[1]!;
  const data = bytes.subarray(2);
  switch (cls) {
    case C.RX: {
      if (cmd > NetCtrlRx.NOBCAST) return bad(`unknown RX command ${cmd}`);
      const why = dataLength(`RX ${RX_NAMES[cmd]}`, data, 1);
      if (why) return bad(why);
      // §5.1.6.5.1: "0 (off) or 1 (on)"; anything else is not a driver's.
      if (data[0]! > 1) return bad(`RX ${RX_NAMES[cmd]} value ${data[0]} is neither 0 nor 1`);
      return { ok: true, command: { kind: 'rx', command: cmd, on: data[0] === 1 } };
    }
    case C.MAC: {
      if (cmd === NetCtrlMac.ADDR_SET) {
        const why = dataLength('MAC ADDR_SET', data, 6);
        if (why) return bad(why);
        const mac = data.slice();
        if (mac[0]! & 1) return bad(`MAC ADDR_SET ${formatMac(mac)} is a multicast address`);
        if (mac.every((b) => b === 0)) return bad('MAC ADDR_SET 00:00:00:00:00:00');
        return { ok: true, command: { kind: 'mac-addr', mac } };
      }
      if (cmd !== NetCtrlMac.TABLE_SET) return bad(`unknown MAC command ${cmd}`);
      const uni = readMacList(data, 0);
      const multi = uni && readMacList(data, uni.end);
      if (!uni || !multi) return bad(`MAC TABLE_SET lists run past the ${data.length} bytes of data`);
      if (multi.end !== data.length) return bad(`MAC TABLE_SET has ${data.length - multi.end} bytes after its lists`);
      return { ok: true, command: { kind: 'mac-table', unicast: uni.list, multicast: multi.list } };
    }
    case C.ANNOUNCE: {
      if (cmd !== VIRTIO_NET_CTRL_ANNOUNCE_ACK) return bad(`unknown ANNOUNCE command ${cmd}`);
      const why = dataLength('ANNOUNCE ACK', data, 0);
      return why ? bad(why) : { ok: true, command: { kind: 'announce-ack' } };
    }
    case C.GUEST_OFFLOADS: {
      if (cmd !== VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET) return bad(`unknown GUEST_OFFLOADS command ${cmd}`);
      const why = dataLength('GUEST_OFFLOADS SET', data, 8);
      if (why) return bad(why);
      return { ok: true, command: { kind: 'guest-offloads', offloads: new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true) } };
    }
    default:
      return bad(`class ${CLASS_NAMES[cls] ?? cls} is not supported`);
  }
}

/** A request for logs and the inspector: "RX PROMISC on", "MAC ADDR_SET 52:54:…". */
export function describeCtrlCommand(c: CtrlCommand): string {
  switch (c.kind) {
    case 'rx':
      return `RX ${RX_NAMES[c.command]} ${c.on ? 'on' : 'off'}`;
    case 'mac-addr':
      return `MAC ADDR_SET ${formatMac(c.mac)}`;
    case 'mac-table': {
      const list = (l: MacList) => (l.overflow ? `> ${MAC_TABLE_ENTRIES} (all)` : l.macs.length ? l.macs.map(formatMac).join(' ') : 'none');
      return `MAC TABLE_SET unicast ${list(c.unicast)}; multicast ${list(c.multicast)}`;
    }
    case 'announce-ack':
      return 'ANNOUNCE ACK';
    case 'guest-offloads':
      return `GUEST_OFFLOADS SET 0x${c.offloads.toString(16)}`;
  }
}
