/**
 * Large transfers through virtio-net in the real guest, in Node: 32 MiB from the host and 32 MiB
 * back through the relay's TCP NAT, md5 checked at the far end. Downloads reach the guest as
 * large-receive super-frames (GUEST_TSO4: merged by the device, or super-segments the relay
 * sent whole) and through window-scaled relay TCP; uploads leave as super-segments the relay
 * terminates whole. The tests say so from the device's counters, and that the guest's stack
 * took them (no rx errors, nothing dropped, bytes intact).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, md5, startNetLab, statsOf, type NetLab } from './guest.ts';

describe('virtio-net: 32 MiB both ways', () => {
  let lab: NetLab;

  beforeAll(async () => {
    lab = await startNetLab('itest-large', undefined, 32 * MiB, { superSegmentsOut: true });
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('downloads 32 MiB (md5 matches in the guest), received as super-frames', async () => {
    const before = statsOf(lab.vm, 'virtio-net').extra;
    const r = await lab.vm.session.run(`wget -q -O - http://10.0.2.2:${lab.filesPort}/payload.bin | md5sum`, { timeoutMs: 300_000 });
    expect(r.status).toBe(0);
    expect(r.output.trim().split(' ')[0]).toBe(md5(lab.payload));
    const after = statsOf(lab.vm, 'virtio-net').extra;
    // Super-frames merged here, or super-segments the relay sent whole (net-segments.test.ts).
    const d = (k: string) => after[k] - before[k];
    const packets = d('rxLroPackets') + d('rxSuperSegments');
    expect(packets).toBeGreaterThan(0);
    expect(d('rxLroSegments') + d('rxSuperSegmentMss')).toBeGreaterThan(2 * packets);
    expect(after.rxDrops).toBe(before.rxDrops);
    // The guest's driver took every super-frame (a bad header would count as an rx error).
    const errors = await lab.vm.session.run('cat /sys/class/net/eth0/statistics/rx_errors /sys/class/net/eth0/statistics/rx_dropped');
    expect(errors.output.trim().split(/\s+/).map(Number)).toEqual([0, 0]);
  }, 320_000);

  it('uploads 32 MiB (streamed from a download; md5 matches at the host), sent as super-segments', async () => {
    const before = statsOf(lab.vm, 'virtio-net').extra;
    const r = await lab.vm.session.run(`wget -q -O - http://10.0.2.2:${lab.filesPort}/payload.bin | nc 10.0.2.2 ${lab.sinkPort}`, { timeoutMs: 300_000 });
    expect(r.status).toBe(0);
    expect(lab.uploads).toHaveLength(1);
    expect(await lab.uploads[0]).toBe(md5(lab.payload));
    expect(lab.vm.deviceErrors).toEqual([]);
    // The relay answered the link's tx hello, so the guest's TSO frames went whole.
    const after = statsOf(lab.vm, 'virtio-net').extra;
    const superSegments = after.txSuperSegments - before.txSuperSegments;
    expect(superSegments).toBeGreaterThan(0);
    // Only a TSO packet with flags other than ACK and PSH (FIN, CWR) is cut (6135 of 6136 went whole when written).
    expect(superSegments).toBeGreaterThanOrEqual(0.9 * (after.txGsoPackets - before.txGsoPackets));
  }, 320_000);
});
