/** One-line meanings for the inspector's hover text, each with the virtio 1.2 section it comes from. */

export const FIELD_HELP = {
  status: '§2.1 Device Status Field: how far driver initialisation got (ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK).',
  ACKNOWLEDGE: '§2.1: the guest OS found the device and recognised it as virtio.',
  DRIVER: '§2.1: the guest OS knows how to drive the device.',
  FEATURES_OK: '§2.1 / §3.1.1: the driver acknowledged the features it understands; negotiation is complete.',
  DRIVER_OK: '§2.1: the driver is set up and ready; the device is live.',
  DEVICE_NEEDS_RESET: '§2.1.2: the device hit an error it cannot recover from; the driver must reset it.',
  FAILED: '§2.1: the driver gave up on the device.',
  features: '§2.2 Feature Bits: offered by the device (device_feature), accepted by the driver (driver_feature) before FEATURES_OK.',
  bar: '§4.1.4 Virtio Structure PCI Capabilities: BAR0 holds common cfg, notify, ISR and device cfg.',
  isr: '§4.1.4.5 ISR status: bit 0 queue interrupt, bit 1 config change; reading it clears it and lowers INTx.',
  config: 'Device configuration space (§5.x.4), read through the device cfg capability.',
  descTable: '§2.7.5 The Virtqueue Descriptor Table: addr, len, flags, next — buffers the driver lends the device.',
  addr: '§2.7.5 virtq_desc.addr: guest-physical address of the buffer.',
  len: '§2.7.5 virtq_desc.len: length of the buffer in bytes.',
  flags: '§2.7.5 virtq_desc.flags: NEXT (chain continues), WRITE (device-writable), INDIRECT (points at a table of descriptors, §2.7.5.3).',
  next: '§2.7.5 virtq_desc.next: the next descriptor of the chain, when NEXT is set.',
  NEXT: 'VIRTQ_DESC_F_NEXT (§2.7.5): the chain continues at `next`.',
  WRITE: 'VIRTQ_DESC_F_WRITE (§2.7.5): device-writable (otherwise device-readable).',
  INDIRECT: 'VIRTQ_DESC_F_INDIRECT (§2.7.5.3): the buffer is a table of descriptors holding the chain.',
  avail: '§2.7.6 The Virtqueue Available Ring: the driver publishes chain heads here and bumps idx.',
  availIdx: '§2.7.6 avail.idx: where the driver will put the next head (free-running, wraps at 65536).',
  availFlags: '§2.7.6 avail.flags: VIRTQ_AVAIL_F_NO_INTERRUPT asks the device not to interrupt (without EVENT_IDX).',
  usedEvent: '§2.7.10 used_event (EVENT_IDX): "interrupt me when used.idx passes this".',
  used: '§2.7.8 The Virtqueue Used Ring: the device returns chain heads (id) with bytes written (len).',
  usedIdx: '§2.7.8 used.idx: where the device will put the next used element (free-running, wraps at 65536).',
  usedFlags: '§2.7.8 used.flags: VIRTQ_USED_F_NO_NOTIFY asks the driver not to kick (without EVENT_IDX).',
  availEvent: '§2.7.10 avail_event (EVENT_IDX): "kick me when avail.idx passes this".',
  lastAvailIdx: "The device's own position in the avail ring (last_avail_idx, kept by the device, not in shared memory; §2.7.6, §2.7.13): the next entry it will consume.",
  pending: 'avail.idx − last_avail_idx (mod 2^16): chains the driver made available that the device has not taken yet.',
  inFlight: 'Chains the device took and has not returned in the used ring yet.',
  kicks: '§4.1.4.4 notifications (kicks): writes to the queue notify address. Fewer kicks than requests = suppressed by NO_NOTIFY / avail_event.',
  interrupts: '§2.7.10 / §4.1.4.5 used-buffer notifications. Fewer interrupts than completions = suppressed by NO_INTERRUPT / used_event.',
  frozen: 'Inspector control (not virtio): the device stops consuming this queue; the driver keeps posting.',
  timeline: 'Events as they happen: kick (driver notify), pop (device takes a chain), complete (used element), interrupt, status (the driver wrote device_status), reset. Times are seconds since the VM’s worker started.',
  rateRequests: 'Chains the device took off the available rings per second (§2.7.13 Supplying Buffers to The Device), all queues, last minute.',
  rateBytes: 'Bytes of the chains the device took per second (descriptor lengths: headers, data and status), last minute.',
} as const;

export type HelpKey = keyof typeof FIELD_HELP;

export function help(key: string): string | undefined {
  return (FIELD_HELP as Record<string, string>)[key];
}

const FEATURE_HELP: Record<string, string> = {
  VIRTIO_F_VERSION_1: '§6: compliant with virtio 1.x (modern interface, little-endian).',
  VIRTIO_F_RING_INDIRECT_DESC: '§2.7.5.3: the driver may use indirect descriptor tables.',
  VIRTIO_F_RING_EVENT_IDX: '§2.7.10: used_event / avail_event replace the NO_INTERRUPT / NO_NOTIFY flags.',
  VIRTIO_BLK_F_SIZE_MAX: '§5.2.3: size_max limits any single segment.',
  VIRTIO_BLK_F_SEG_MAX: '§5.2.3: seg_max limits segments per request.',
  VIRTIO_BLK_F_BLK_SIZE: '§5.2.3: blk_size is the logical block size.',
  VIRTIO_BLK_F_FLUSH: '§5.2.3: the device accepts VIRTIO_BLK_T_FLUSH.',
  VIRTIO_BLK_F_TOPOLOGY: '§5.2.3: physical_block_exp / alignment / io sizes are valid.',
  VIRTIO_BLK_F_CONFIG_WCE: '§5.2.3: the writeback field toggles the write cache.',
  VIRTIO_BLK_F_DISCARD: '§5.2.3: the device accepts VIRTIO_BLK_T_DISCARD.',
  VIRTIO_BLK_F_WRITE_ZEROES: '§5.2.3: the device accepts VIRTIO_BLK_T_WRITE_ZEROES.',
  VIRTIO_BLK_F_RO: '§5.2.3: the disk is read-only.',
  VIRTIO_NET_F_CSUM: '§5.1.3: the device completes partial checksums the driver leaves (tx).',
  VIRTIO_NET_F_GUEST_CSUM: '§5.1.3: the driver accepts packets with partial/validated checksums (rx).',
  VIRTIO_NET_F_MTU: '§5.1.3: the mtu config field is valid.',
  VIRTIO_NET_F_MAC: '§5.1.3: the mac config field is valid.',
  VIRTIO_NET_F_HOST_TSO4: '§5.1.3: the device segments TCPv4 super-frames (TSO).',
  VIRTIO_NET_F_MRG_RXBUF: '§5.1.3: a received packet may span several rx buffers (num_buffers).',
  VIRTIO_NET_F_STATUS: '§5.1.3: the status config field (link up) is valid.',
};

export function featureHelp(name: string): string {
  return FEATURE_HELP[name] ?? '§6 / §5.x.3 feature bit.';
}
