/** struct virtio_net_hdr (§5.1.6) in the VERSION_1 layout: 12 bytes, little-endian. */
import { NetHdrOffset as O, VIRTIO_NET_HDR_SIZE } from './spec.ts';

export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

export function parseNetHdr(bytes: Uint8Array): VirtioNetHdr {
  if (bytes.length < VIRTIO_NET_HDR_SIZE) throw new RangeError(`virtio_net_hdr needs ${VIRTIO_NET_HDR_SIZE} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, VIRTIO_NET_HDR_SIZE);
  return {
    flags: dv.getUint8(O.FLAGS),
    gsoType: dv.getUint8(O.GSO_TYPE),
    hdrLen: dv.getUint16(O.HDR_LEN, true),
    gsoSize: dv.getUint16(O.GSO_SIZE, true),
    csumStart: dv.getUint16(O.CSUM_START, true),
    csumOffset: dv.getUint16(O.CSUM_OFFSET, true),
    numBuffers: dv.getUint16(O.NUM_BUFFERS, true),
  };
}

export function encodeNetHdr(hdr: Partial<VirtioNetHdr>, out = new Uint8Array(VIRTIO_NET_HDR_SIZE)): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, VIRTIO_NET_HDR_SIZE);
  dv.setUint8(O.FLAGS, hdr.flags ?? 0);
  dv.setUint8(O.GSO_TYPE, hdr.gsoType ?? 0);
  dv.setUint16(O.HDR_LEN, hdr.hdrLen ?? 0, true);
  dv.setUint16(O.GSO_SIZE, hdr.gsoSize ?? 0, true);
  dv.setUint16(O.CSUM_START, hdr.csumStart ?? 0, true);
  dv.setUint16(O.CSUM_OFFSET, hdr.csumOffset ?? 0, true);
  dv.setUint16(O.NUM_BUFFERS, hdr.numBuffers ?? 0, true);
  return out;
}
