/**
 * virtio-rng as a subject of the transport fuzzer (virtio/testing/transport-properties.ts), on
 * the ring layout the case asks for (`ring: 'packed'` offers VIRTIO_F_RING_PACKED).
 */
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import type { TransportSubject } from '../../virtio/testing/transport-properties.ts';
import { VirtioRng } from './rng.ts';

/** Deterministic "random" bytes: the fuzzer's cases must replay exactly. */
function counterSource(): (buffer: Uint8Array) => void {
  let n = 0;
  return (buffer) => {
    for (let i = 0; i < buffer.length; i++) buffer[i] = n++ & 0xff;
  };
}

export const rngSubject: TransportSubject = {
  name: 'virtio-rng',
  create({ barKind, memorySize, byteAccess, ring }) {
    const t = DriverMock.create(new VirtioRng(counterSource()), { memorySize, byteAccess, pci: { barKind, ring } });
    return {
      t,
      configWritable: () => false,
      validWork() {
        const [q] = t.initRings();
        q.add({ writable: [32] });
        q.kick();
        const used = q.used();
        if (used.length !== 1 || used[0].len !== 32) fail('virtio-rng: honest request did not complete after garbage');
      },
    };
  },
};
