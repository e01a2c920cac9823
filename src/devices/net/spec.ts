/**
 * Numbers of virtio-net (§5.1) that the device, its tests and the inspector share.
 * Feature bit numbers live in virtio/constants.ts (NetFeature); Ethernet's sizes in
 * wire/ethernet.ts.
 */
import { ETH_HLEN } from '../../wire/ethernet.ts';

/** §5.1.2 Virtqueues: receiveq1, transmitq1 and, with VIRTIO_NET_F_CTRL_VQ, controlq (no multiqueue: index 2). */
export const NET_RECEIVEQ = 0;
export const NET_TRANSMITQ = 1;
export const NET_CTRLQ = 2;

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

/** §5.1.6.5 struct virtio_net_ctrl: class and command (device-readable), then data, then the ack byte (device-writable). */
export const VIRTIO_NET_OK = 0;
export const VIRTIO_NET_ERR = 1;

/** Control classes (§5.1.6.5); VLAN, MQ and the later ones are not offered, so their commands get VIRTIO_NET_ERR. */
export const NetCtrlClass = {
  RX: 0,
  MAC: 1,
  VLAN: 2,
  ANNOUNCE: 3,
  MQ: 4,
  GUEST_OFFLOADS: 5,
} as const;

/** VIRTIO_NET_CTRL_RX commands (§5.1.6.5.1): one byte of data, 0 (off) or 1 (on). The last four need CTRL_RX_EXTRA. */
export const NetCtrlRx = {
  PROMISC: 0,
  ALLMULTI: 1,
  ALLUNI: 2,
  NOMULTI: 3,
  NOUNI: 4,
  NOBCAST: 5,
} as const;

/** VIRTIO_NET_CTRL_MAC commands (§5.1.6.5.2). */
export const NetCtrlMac = {
  TABLE_SET: 0,
  ADDR_SET: 1,
} as const;

/** VIRTIO_NET_CTRL_ANNOUNCE_ACK (§5.1.6.5.4), VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET (§5.1.6.5.6.1). */
export const VIRTIO_NET_CTRL_ANNOUNCE_ACK = 0;
export const VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET = 0;
