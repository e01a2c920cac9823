/**
 * virtio-console as a subject of the transport fuzzer (virtio/testing/transport-properties.ts):
 * no driver-writable config, and after the garbage an honest handshake plus one message each
 * way on the named port, checked end to end.
 * The ring layout is the case's: `ring: 'packed'` offers VIRTIO_F_RING_PACKED and the honest
 * bring-up takes it.
 */
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import type { TransportSubject } from '../../virtio/testing/transport-properties.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { VirtioConsole } from './console.ts';
import { encodeControl } from './control.ts';
import { CONTROL_RECEIVEQ, CONTROL_TRANSMITQ, ConsoleControl as C, receiveqOf, transmitqOf } from './spec.ts';
import { RUN_PORT } from './testing.ts';

export const consoleSubject: TransportSubject = {
  name: 'virtio-console',
  create({ barKind, memorySize, byteAccess, deferred, ring }) {
    const later = deferred ? manualDefer() : undefined;
    const device = new VirtioConsole({ ports: [RUN_PORT], defer: later?.defer });
    const t = DriverMock.create(device, { memorySize, byteAccess, pci: { barKind, ring } });
    return {
      t,
      settle: later?.settle,
      configWritable: () => false,
      validWork() {
        const q = t.initRings();
        const got: Uint8Array[] = [];
        const port = device.port(RUN_PORT)!;
        port.onData = (b) => got.push(b);
        for (let i = 0; i < 6; i++) q[CONTROL_RECEIVEQ].add({ writable: [64] });
        q[CONTROL_RECEIVEQ].kick();
        for (const msg of [
          { id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 },
          { id: 1, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 },
          { id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 },
        ]) {
          q[CONTROL_TRANSMITQ].add({ readable: [encodeControl(msg)] });
          q[CONTROL_TRANSMITQ].kick();
        }
        if (q[CONTROL_RECEIVEQ].used().length !== 4 || !port.guestOpen) fail('virtio-console: honest handshake failed after garbage');
        const out = Uint8Array.from({ length: 100 }, (_, i) => i);
        q[transmitqOf(1)].add({ readable: [out] });
        q[transmitqOf(1)].kick();
        later?.settle();
        if (got.length !== 1 || !equalBytes(got[0], out)) fail('virtio-console: guest → host bytes lost after garbage');
        q[receiveqOf(1)].add({ writable: [256] });
        q[receiveqOf(1)].kick();
        port.write(out);
        const used = q[receiveqOf(1)].used();
        if (used.length !== 1 || !equalBytes(used[0].data, out)) fail('virtio-console: host → guest bytes lost after garbage');
      },
    };
  },
};
