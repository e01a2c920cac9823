/**
 * virtio-blk as a subject of the transport fuzzer (virtio/testing/transport-properties.ts): a
 * 32 KiB memory disk, `writeback` the only driver-writable config byte, and an honest write +
 * read checked byte for byte after the garbage.
 * The ring layout is the case's: `ring: 'packed'` offers VIRTIO_F_RING_PACKED and the honest
 * bring-up takes it.
 */
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import type { TransportSubject } from '../../virtio/testing/transport-properties.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { VirtioBlk } from './blk.ts';
import { BlkConfigOffset } from './config.ts';
import { VirtioBlkReqType as T } from './spec.ts';
import { outhdr } from './testing.ts';

export const blkSubject: TransportSubject = {
  name: 'virtio-blk',
  create({ barKind, memorySize, byteAccess, deferred, ring }) {
    const backend = new MemoryBlockBackend(64 * 512);
    const later = deferred ? manualDefer() : undefined;
    const t = DriverMock.create(new VirtioBlk({ backend, serial: 'fuzz', defer: later?.defer }), { memorySize, byteAccess, pci: { barKind, ring } });
    return {
      t,
      settle: later?.settle,
      configWritable: (offset) => offset === BlkConfigOffset.WRITEBACK,
      validWork() {
        const [q] = t.initRings();
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
        if (!equalBytes(got, data) || !equalBytes(backend.bytes.subarray(5 * 512, 5 * 512 + 1024), data)) {
          fail('virtio-blk: honest write + read returned the wrong bytes after garbage');
        }
      },
    };
  },
};
