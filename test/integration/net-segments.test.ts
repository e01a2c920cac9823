/**
 * Super-segments end to end, in Node with the real guest: the NIC offers them to the relay
 * while large receive is in force, the relay's TCP sends 64 KiB segments as single WebSocket
 * messages, and the guest's stack takes them (32 MiB, md5 checked in the guest). Then large
 * receive goes off: the guest has no ethtool, so the device's offloads are set host-side
 * through the path CTRL_GUEST_OFFLOADS takes; the offer is withdrawn and the next 32 MiB come
 * as MTU frames, intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetFeature, featureBit } from '../../src/virtio/constants.ts';
import type { VirtioNet } from '../../src/devices/net/net.ts';
import { MiB, md5, startNetLab, statsOf, type NetLab } from './guest.ts';

const ROOM = 'itest-segments';

describe('virtio-net: super-segments from the relay', () => {
  let lab: NetLab;
  let nic: VirtioNet;
  const client = () => lab.relay.stats().rooms.find((r) => r.name === ROOM)!.clients[0]!;
  const download = () => lab.vm.session.run(`wget -q -O - http://10.0.2.2:${lab.filesPort}/payload.bin | md5sum`, { timeoutMs: 300_000 });
  const rxErrors = async () => (await lab.vm.session.run('cat /sys/class/net/eth0/statistics/rx_errors /sys/class/net/eth0/statistics/rx_dropped')).output.trim().split(/\s+/).map(Number);

  beforeAll(async () => {
    lab = await startNetLab(ROOM, undefined, 32 * MiB);
    nic = lab.vm.machine.devices.net!.device as VirtioNet;
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('with the offer in force: 32 MiB arrive as super-segments, md5 matches, no rx errors', async () => {
    expect(client().superSegmentBytes).toBe(nic.superSegmentsOffered);
    expect(nic.superSegmentsOffered).toBeGreaterThan(60_000);
    const before = statsOf(lab.vm, 'virtio-net').extra;
    const r = await download();
    expect(r.status).toBe(0);
    expect(r.output.trim().split(' ')[0]).toBe(md5(lab.payload));
    const after = statsOf(lab.vm, 'virtio-net').extra;
    const superSegments = after.rxSuperSegments - before.rxSuperSegments;
    expect(superSegments).toBeGreaterThan(0);
    // Most of the bytes came that way: each carried many MSS segments.
    expect(after.rxSuperSegmentMss - before.rxSuperSegmentMss).toBeGreaterThan(8 * superSegments);
    expect(after.rxDrops).toBe(before.rxDrops);
    expect(await rxErrors()).toEqual([0, 0]);
  }, 320_000);

  it('with large receive turned off: the offer is withdrawn, 32 MiB arrive as MTU frames, md5 matches', async () => {
    nic.control.restoreOffloads(featureBit(NetFeature.VIRTIO_NET_F_GUEST_CSUM));
    expect(nic.superSegmentsOffered).toBe(0);
    const deadline = Date.now() + 5000;
    while (client().superSegmentBytes !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(client().superSegmentBytes).toBe(0);
    const before = statsOf(lab.vm, 'virtio-net').extra;
    const r = await download();
    expect(r.status).toBe(0);
    expect(r.output.trim().split(' ')[0]).toBe(md5(lab.payload));
    const after = statsOf(lab.vm, 'virtio-net').extra;
    expect(after.rxSuperSegments - before.rxSuperSegments).toBe(0);
    expect(after.rxFrames - before.rxFrames).toBeGreaterThan((32 * MiB) / 1514);
    expect(await rxErrors()).toEqual([0, 0]);
    expect(lab.vm.deviceErrors).toEqual([]);
  }, 320_000);
});
