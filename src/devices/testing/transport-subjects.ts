/**
 * The lab's real devices as subjects of the transport fuzzer (virtio/testing/
 * transport-properties.ts): each on fresh memory, with what its driver may write in config
 * space and one unit of honest work checked end to end after the garbage.
 */
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { transportSubjectProperty, type TransportSubject } from '../../virtio/testing/transport-properties.ts';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { memoryLinkPair } from '../../backends/memory-frame-link.ts';
import { BlkConfigOffset } from '../blk/config.ts';
import { VirtioBlkReqType as T } from '../blk/spec.ts';
import { outhdr } from '../blk/testing.ts';
import { VirtioBlk } from '../blk/blk.ts';
import { VIRTIO_NET_HDR_SIZE } from '../net/spec.ts';
import { GUEST_MAC, PEER_MAC, ethernet } from '../net/testing.ts';
import { VirtioNet } from '../net/net.ts';
import { VirtioRng } from '../rng/rng.ts';

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * A `defer` for devices that serve kicks later: jobs wait until settle() runs them (what the
 * end of the emulator's time slice does in the lab), so a case can reset or kick in between.
 */
export function manualDefer(): { defer: (job: () => void) => void; settle: () => void } {
  const jobs: Array<() => void> = [];
  return {
    defer: (job) => void jobs.push(job),
    settle: () => {
      for (let job = jobs.shift(); job; job = jobs.shift()) job();
    },
  };
}

/** Deterministic "random" bytes: the fuzzer's cases must replay exactly. */
function counterSource(): (buffer: Uint8Array) => void {
  let n = 0;
  return (buffer) => {
    for (let i = 0; i < buffer.length; i++) buffer[i] = n++ & 0xff;
  };
}

export const blkSubject: TransportSubject = {
  name: 'virtio-blk',
  create({ barKind, memorySize, byteAccess, deferred }) {
    const backend = new MemoryBlockBackend(64 * 512);
    const later = deferred ? manualDefer() : undefined;
    const t = DriverMock.create(new VirtioBlk({ backend, serial: 'fuzz', defer: later?.defer }), { memorySize, byteAccess, pci: { barKind } });
    return {
      t,
      settle: later?.settle,
      configWritable: (offset) => offset === BlkConfigOffset.WRITEBACK,
      validWork() {
        const [q] = t.init();
        const data = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7 + 3) & 0xff);
        const write = q.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 5), data], writable: [1] });
        q.kick();
        later?.settle();
        const read = q.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 5)], writable: [1024, 1] });
        q.kick();
        later?.settle();
        const used = q.used();
        const statusOf = (r: { addr: number; len: number }) => t.memory.bytes[r.addr + r.len - 1];
        if (used.length !== 2 || statusOf(write.writable[0]) !== 0 || statusOf(read.writable[1]) !== 0) {
          fail('virtio-blk: honest write + read did not complete with status OK after garbage');
        }
        const got = t.memory.bytes.subarray(read.writable[0].addr, read.writable[0].addr + 1024);
        if (!equal(got, data) || !equal(backend.bytes.subarray(5 * 512, 5 * 512 + 1024), data)) {
          fail('virtio-blk: honest write + read returned the wrong bytes after garbage');
        }
      },
    };
  },
};

export const netSubject: TransportSubject = {
  name: 'virtio-net',
  create({ barKind, memorySize, byteAccess, deferred }) {
    const [near, peer] = memoryLinkPair();
    const wire: Uint8Array[] = [];
    peer.attach({ onFrame: (f) => wire.push(f), onLinkChange: () => {} });
    const later = deferred ? manualDefer() : undefined;
    const t = DriverMock.create(new VirtioNet({ link: near, mac: GUEST_MAC, defer: later?.defer }), { memorySize, byteAccess, pci: { barKind } });
    return {
      t,
      settle: later?.settle,
      configWritable: () => false,
      validWork() {
        const [rxq, txq] = t.init();
        wire.length = 0;
        const out = ethernet(Uint8Array.from({ length: 46 }, (_, i) => i), 0x88b5, PEER_MAC, GUEST_MAC);
        const packet = new Uint8Array(VIRTIO_NET_HDR_SIZE + out.length);
        packet.set(out, VIRTIO_NET_HDR_SIZE);
        txq.add({ readable: [packet] });
        txq.kick();
        later?.settle();
        if (txq.used().length !== 1 || wire.length !== 1 || !equal(wire[0], out)) fail('virtio-net: honest tx did not reach the wire after garbage');
        rxq.add({ writable: [VIRTIO_NET_HDR_SIZE + 1514] });
        rxq.kick();
        const into = ethernet(Uint8Array.from({ length: 50 }, (_, i) => 255 - i), 0x88b5, GUEST_MAC, PEER_MAC);
        peer.send(into);
        const used = rxq.used();
        if (used.length !== 1 || !equal(used[0].data.subarray(VIRTIO_NET_HDR_SIZE), into)) fail('virtio-net: honest rx did not arrive after garbage');
      },
    };
  },
};

export const rngSubject: TransportSubject = {
  name: 'virtio-rng',
  create({ barKind, memorySize, byteAccess }) {
    const t = DriverMock.create(new VirtioRng(counterSource()), { memorySize, byteAccess, pci: { barKind } });
    return {
      t,
      configWritable: () => false,
      validWork() {
        const [q] = t.init();
        q.add({ writable: [32] });
        q.kick();
        const used = q.used();
        if (used.length !== 1 || used[0].len !== 32) fail('virtio-rng: honest request did not complete after garbage');
      },
    };
  },
};

export function deviceTransportProperties(): NamedProperty[] {
  return [blkSubject, netSubject, rngSubject].map(transportSubjectProperty);
}
