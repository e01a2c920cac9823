/**
 * Numbers of virtio-net (§5.1) that the device, its tests and the inspector share.
 * Feature bit numbers live in virtio/constants.ts (NetFeature); Ethernet's sizes in
 * wire/ethernet.ts.
 */
import { ETH_HLEN } from '../../wire/ethernet.ts';

/** §5.1.2 Virtqueues: receiveq1 and transmitq1 (no control queue, no multiqueue). */
export const NET_RECEIVEQ = 0;
export const NET_TRANSMITQ = 1;

/**
 * struct virtio_net_hdr (§5.1.6). With VIRTIO_F_VERSION_1 num_buffers is always present,
 * so the header is 12 bytes whether or not MRG_RXBUF was negotiated.
 */
export const VIRTIO_NET_HDR_SIZE = 12;
export const NetHdrOffset = {
  FLAGS: 0, // u8
  GSO_TYPE: 1, // u8
  HDR_LEN: 2, // le16
  GSO_SIZE: 4, // le16
  CSUM_START: 6, // le16
  CSUM_OFFSET: 8, // le16
  NUM_BUFFERS: 10, // le16
} as const;

/** virtio_net_hdr.flags */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;

/** virtio_net_hdr.gso_type */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** §5.1.4 virtio_net_config.status bits. */
export const VIRTIO_NET_S_LINK_UP = 1;
export const VIRTIO_NET_S_ANNOUNCE = 2;

/** Largest frame a TSO send may hand us: an IPv4 datagram is at most 64 KiB. */
export const MAX_GSO_FRAME = ETH_HLEN + 65535;
