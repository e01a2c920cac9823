/**
 * Control-queue requests as a driver writes them (§5.1.6.5), and a helper that sends one over a
 * DriverMock queue and reads its ack. For tests, the fuzz properties and the transport fuzzer.
 */
import type { Region } from '../../virtio/queue/descriptor-chain.ts';
import type { DriverRing } from '../../virtio/testing/driver-mock.ts';
import { NetCtrlClass, NetCtrlMac, VIRTIO_NET_CTRL_ANNOUNCE_ACK, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET } from './spec.ts';

export function ctrlRequest(cls: number, command: number, data: Uint8Array = new Uint8Array()): Uint8Array {
  const out = new Uint8Array(2 + data.length);
  out[0] = cls;
  out[1] = command;
  out.set(data, 2);
  return out;
}

/** VIRTIO_NET_CTRL_RX_* `command` on or off. */
export const rxModeRequest = (command: number, on: boolean) => ctrlRequest(NetCtrlClass.RX, command, Uint8Array.of(on ? 1 : 0));

/** struct virtio_net_ctrl_mac: le32 entries, then the addresses. `entries` may lie (malformed tests). */
export function macList(macs: readonly Uint8Array[], entries = macs.length): Uint8Array {
  const out = new Uint8Array(4 + 6 * macs.length);
  new DataView(out.buffer).setUint32(0, entries, true);
  macs.forEach((m, i) => out.set(m.subarray(0, 6), 4 + 6 * i));
  return out;
}

export function macTableRequest(unicast: readonly Uint8Array[], multicast: readonly Uint8Array[]): Uint8Array {
  const uni = macList(unicast);
  const multi = macList(multicast);
  const data = new Uint8Array(uni.length + multi.length);
  data.set(uni);
  data.set(multi, uni.length);
  return ctrlRequest(NetCtrlClass.MAC, NetCtrlMac.TABLE_SET, data);
}

export const macAddrRequest = (mac: Uint8Array) => ctrlRequest(NetCtrlClass.MAC, NetCtrlMac.ADDR_SET, mac);
export const announceAckRequest = () => ctrlRequest(NetCtrlClass.ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK);

export function offloadsRequest(offloads: bigint): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setBigUint64(0, offloads, true);
  return ctrlRequest(NetCtrlClass.GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, data);
}

/**
 * Send one request (cut into descriptors at `split` byte counts, as Linux sends header and
 * data apart) with `ackBytes` of device-writable room, kick, and return what came back:
 * the used length and the ack byte (undefined when nothing was written).
 */
export function sendCtrl(q: DriverRing, request: Uint8Array, split: readonly number[] = [2], ackBytes = 1): { len: number; ack: number | undefined; ackRegions: Region[] } {
  const readable: Uint8Array[] = [];
  let at = 0;
  for (const n of split) {
    if (at >= request.length) break;
    readable.push(request.subarray(at, at + n));
    at += n;
  }
  if (at < request.length) readable.push(request.subarray(at));
  const { writable } = q.add({ readable, writable: ackBytes > 0 ? [ackBytes] : [] });
  q.kick();
  const used = q.used();
  if (used.length !== 1) throw new Error(`control request: ${used.length} used elements, expected 1`);
  return { len: used[0]!.len, ack: used[0]!.len > 0 ? used[0]!.data[0] : undefined, ackRegions: writable };
}
