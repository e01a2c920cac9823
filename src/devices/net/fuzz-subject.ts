/**
 * virtio-net as a subject of the transport fuzzer (virtio/testing/transport-properties.ts): on
 * an in-memory link, no driver-writable config, and one honest frame each way (and one control
 * request, when negotiated) checked after the garbage.
 * The ring layout is the case's: `ring: 'packed'` offers VIRTIO_F_RING_PACKED and the honest
 * bring-up takes it.
 */
import { memoryLinkPair } from '../../backends/memory-frame-link.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import type { TransportSubject } from '../../virtio/testing/transport-properties.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { VirtioNet } from './net.ts';
import { hasFeature, NetFeature } from '../../virtio/constants.ts';
import { rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { NET_CTRLQ, NetCtrlRx, VIRTIO_NET_HDR_SIZE, VIRTIO_NET_OK } from './spec.ts';
import { GUEST_MAC, PEER_MAC, ethernet } from './testing.ts';

export const netSubject: TransportSubject = {
  name: 'virtio-net',
  create({ barKind, memorySize, byteAccess, deferred, ring }) {
    const [near, peer] = memoryLinkPair();
    const wire: Uint8Array[] = [];
    peer.attach({ onFrame: (f) => wire.push(f), onLinkChange: () => {} });
    const later = deferred ? manualDefer() : undefined;
    // A pass over its budget leaves the rest to `nextTask` (the lab: a macrotask), which
    // settle() does not run: a kick's work is its first pass (budget.ts), as in the lab.
    const nextTask = deferred ? manualDefer() : undefined;
    const t = DriverMock.create(new VirtioNet({ link: near, mac: GUEST_MAC, defer: later?.defer, later: nextTask?.defer }), { memorySize, byteAccess, pci: { barKind, ring } });
    return {
      t,
      settle: later?.settle,
      configWritable: () => false,
      validWork() {
        const [rxq, txq] = t.initRings();
        wire.length = 0;
        const out = ethernet(Uint8Array.from({ length: 46 }, (_, i) => i), 0x88b5, PEER_MAC, GUEST_MAC);
        const packet = new Uint8Array(VIRTIO_NET_HDR_SIZE + out.length);
        packet.set(out, VIRTIO_NET_HDR_SIZE);
        txq.add({ readable: [packet] });
        txq.kick();
        later?.settle();
        if (txq.used().length !== 1 || wire.length !== 1 || !equalBytes(wire[0], out)) fail('virtio-net: honest tx did not reach the wire after garbage');
        // The control queue answers an honest request (when the bring-up took CTRL_VQ and CTRL_RX).
        const cq = t.queues[NET_CTRLQ];
        if (cq && hasFeature(t.features, NetFeature.VIRTIO_NET_F_CTRL_RX) && hasFeature(t.features, NetFeature.VIRTIO_NET_F_CTRL_VQ)) {
          if (sendCtrl(cq, rxModeRequest(NetCtrlRx.PROMISC, true)).ack !== VIRTIO_NET_OK) fail('virtio-net: an honest control request failed after garbage');
        }
        rxq.add({ writable: [VIRTIO_NET_HDR_SIZE + 1514] });
        rxq.kick();
        const into = ethernet(Uint8Array.from({ length: 50 }, (_, i) => 255 - i), 0x88b5, GUEST_MAC, PEER_MAC);
        peer.send(into);
        const used = rxq.used();
        if (used.length !== 1 || !equalBytes(used[0].data.subarray(VIRTIO_NET_HDR_SIZE), into)) fail('virtio-net: honest rx did not arrive after garbage');
      },
    };
  },
};
