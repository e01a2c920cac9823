import { describe, expect, it } from 'vitest';
import { memoryLinkPair } from '../../backends/memory-frame-link.ts';
import { IsrBit, NetFeature as N, featureBit } from '../../virtio/constants.ts';
import type { FunctionState } from '../../virtio/pci/function-state.ts';
import { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { DriverMock, type DriverRing } from '../../virtio/testing/driver-mock.ts';
import { NetConfigOffset } from './config.ts';
import { MAC_TABLE_ENTRIES } from './ctrl-budget.ts';
import { announceAckRequest, macTableRequest, offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { netDevice } from './index.ts';
import { VirtioNet, type VirtioNetOptions } from './net.ts';
import { NET_CTRLQ, NET_RECEIVEQ, NetCtrlRx, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_SIZE, VIRTIO_NET_OK, VIRTIO_NET_S_ANNOUNCE, VIRTIO_NET_S_LINK_UP } from './spec.ts';
import { GUEST_IP, GUEST_MAC, PEER_IP, PEER_MAC, ethernet, finishL4, ipv4, tcp } from './testing.ts';

const GROUP = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x01);
const OTHER = Uint8Array.of(0x02, 0x00, 0x00, 0x99, 0x88, 0x77);

function running(options: Partial<VirtioNetOptions> = {}, features?: bigint) {
  const [near] = memoryLinkPair();
  const t = DriverMock.create(new VirtioNet({ link: near, mac: GUEST_MAC, queueSize: 16, ...options }), { pci: { deviceState: netDevice.state } });
  t.initRings(features === undefined ? {} : { features });
  return t;
}

/** Restore `state` into a fresh NIC (same options) over a copy of t's RAM; the driver carries on. */
function restoreInto(t: DriverMock, state: FunctionState, options: Partial<VirtioNetOptions> = {}) {
  const memory = new ArrayMemory(t.memory.size);
  memory.bytes.set(t.memory.bytes);
  const net = new VirtioNet({ link: memoryLinkPair()[0], mac: GUEST_MAC, queueSize: 16, ...options });
  const fn = new VirtioPciFunction(net, { deviceState: netDevice.state });
  t.continueOn(fn, memory);
  fn.restoreState(JSON.parse(JSON.stringify(state)));
  return { net, fn };
}

describe('virtio-net control state across a snapshot', () => {
  it('the filter and offloads come back; the state saves back unchanged; then the NIC can ask the guest to announce itself', () => {
    const t = running();
    const cq = t.queues[NET_CTRLQ] as DriverRing;
    expect(sendCtrl(cq, rxModeRequest(NetCtrlRx.PROMISC, false)).ack).toBe(VIRTIO_NET_OK);
    expect(sendCtrl(cq, rxModeRequest(NetCtrlRx.NOBCAST, true)).ack).toBe(VIRTIO_NET_OK);
    expect(sendCtrl(cq, macTableRequest([OTHER], [GROUP])).ack).toBe(VIRTIO_NET_OK);
    expect(sendCtrl(cq, offloadsRequest(0n)).ack).toBe(VIRTIO_NET_OK);
    const saved = (t.fn.device as VirtioNet).control.filter.state;
    t.readIsr();
    const generation = t.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    const state = t.fn.saveState();
    const { net, fn } = restoreInto(t, state);
    expect(net.control.filter.state).toEqual(saved);
    expect(net.guestOffloads).toBe(0n);
    expect(JSON.parse(JSON.stringify(fn.saveState()))).toEqual(JSON.parse(JSON.stringify(state)));
    expect(fn.isrStatus).toBe(0);
    // What the lab does after a restore (announceRestoredGuest).
    expect(net.requestAnnounce()).toBe(true);
    expect(t.readConfig(NetConfigOffset.STATUS, 2)).toBe(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
    expect(fn.isrStatus & IsrBit.CONFIG).toBe(IsrBit.CONFIG);
    expect(t.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe((generation + 1) & 0xff);
    // The guest's driver answers as Linux's does: ANNOUNCE_ACK clears the bit.
    expect(sendCtrl(t.queues[NET_CTRLQ] as DriverRing, announceAckRequest()).ack).toBe(VIRTIO_NET_OK);
    expect(t.readConfig(NetConfigOffset.STATUS, 2)).toBe(VIRTIO_NET_S_LINK_UP);
  });

  it('offloads turned off before a save stay off after the restore: a burst comes in as MTU frames', () => {
    const t = running();
    const cq = t.queues[NET_CTRLQ] as DriverRing;
    expect(sendCtrl(cq, offloadsRequest(featureBit(N.VIRTIO_NET_F_GUEST_CSUM))).ack).toBe(VIRTIO_NET_OK);
    const state = t.fn.saveState();
    const [near, far] = memoryLinkPair();
    const { net } = restoreInto(t, state, { link: near });
    expect(net.guestOffloads).toBe(featureBit(N.VIRTIO_NET_F_GUEST_CSUM));
    // Six segments of one flow wait together, then buffers: without GUEST_TSO4, six frames.
    for (let i = 0; i < 6; i++) far.send(tcpSegment(i * 1000, 1000));
    const rx = t.queues[NET_RECEIVEQ] as DriverRing;
    for (let i = 0; i < 8; i++) rx.add({ writable: [VIRTIO_NET_HDR_SIZE + 1518] });
    rx.kick();
    const used = rx.used();
    expect(used.map((u) => u.len)).toEqual(Array(6).fill(VIRTIO_NET_HDR_SIZE + 1054));
    expect(used.every((u) => u.data[1] === VIRTIO_NET_HDR_GSO_NONE)).toBe(true); // gso_type
    expect(net.stats.rxLroPackets).toBe(0);
  });

  it('no announce when the driver did not negotiate GUEST_ANNOUNCE', () => {
    const t = running({}, t0Features() & ~featureBit(N.VIRTIO_NET_F_GUEST_ANNOUNCE));
    t.readIsr();
    const { fn, net } = restoreInto(t, t.fn.saveState());
    expect(net.requestAnnounce()).toBe(false);
    expect(t.readConfig(NetConfigOffset.STATUS, 2)).toBe(VIRTIO_NET_S_LINK_UP);
    expect(fn.isrStatus).toBe(0);
  });

  it('a state saved before the control queue existed loads with the power-on filter', () => {
    const t = running({ ctrlVq: false });
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    delete state.device.ctrl;
    const { net } = restoreInto(t, state, { ctrlVq: false });
    expect(net.control.filter.promisc).toBe(true);
    expect(net.guestOffloads).toBe(featureBit(N.VIRTIO_NET_F_GUEST_CSUM) | featureBit(N.VIRTIO_NET_F_GUEST_TSO4));
  });

  it('refuses a control section over its bounds or naming offloads the NIC does not offer', () => {
    const t = running();
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    const fresh = () => {
      const fn = new VirtioPciFunction(new VirtioNet({ link: memoryLinkPair()[0], mac: GUEST_MAC, queueSize: 16 }), { deviceState: netDevice.state });
      fn.connect({ memory: t.memory, irq: t.irq });
      return fn;
    };
    const macs = Array.from({ length: MAC_TABLE_ENTRIES + 1 }, () => '02:00:00:00:00:01');
    const tooMany = { ...state, device: { ...state.device, ctrl: { ...state.device.ctrl, unicast: { macs, overflow: false } } } };
    expect(() => fresh().restoreState(tooMany)).toThrow(/unicast\.macs: 65 elements, at most 64/);
    const notMac = { ...state, device: { ...state.device, ctrl: { ...state.device.ctrl, multicast: { macs: ['zz'], overflow: false } } } };
    expect(() => fresh().restoreState(notMac)).toThrow(/"zz" is not a MAC address/);
    const tso = { ...state, device: { ...state.device, ctrl: { ...state.device.ctrl, offloads: '0x100' } } }; // GUEST_TSO6
    expect(() => fresh().restoreState(tso)).toThrow(/offloads this NIC does not offer/);
    const promisc = { ...state, device: { ...state.device, ctrl: { ...state.device.ctrl, promisc: 'yes' } } };
    expect(() => fresh().restoreState(promisc)).toThrow(/not a boolean/);
  });
});

/** A segment of one flow toward the guest, checksums correct (a merge candidate). */
function tcpSegment(seq: number, size: number): Uint8Array {
  const payload = new Uint8Array(size).fill(seq & 0xff);
  return finishL4(ethernet(ipv4({ protocol: 6, src: PEER_IP, dst: GUEST_IP, payload: tcp({ srcPort: 80, dstPort: 40000, seq, ack: 1, flags: 0x10, payload }) }), 0x0800, GUEST_MAC, PEER_MAC));
}

/** Every feature the NIC offers (what running() negotiates by default). */
function t0Features(): bigint {
  return running().deviceFeatures();
}
