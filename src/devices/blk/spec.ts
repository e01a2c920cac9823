/**
 * Numbers of virtio-blk (virtio 1.2 §5.2) that the request parser, the executor and the
 * config space share. Feature bits live with the other feature tables in
 * src/virtio/constants.ts (BlkFeature).
 */

/** §5.2.2 The one virtqueue. */
export const BLK_REQUESTQ = 0;

/** §5.2.6 struct virtio_blk_req.type. */
export const VirtioBlkReqType = {
  VIRTIO_BLK_T_IN: 0,
  VIRTIO_BLK_T_OUT: 1,
  VIRTIO_BLK_T_FLUSH: 4,
  VIRTIO_BLK_T_GET_ID: 8,
  VIRTIO_BLK_T_GET_LIFETIME: 10,
  VIRTIO_BLK_T_DISCARD: 11,
  VIRTIO_BLK_T_WRITE_ZEROES: 13,
  VIRTIO_BLK_T_SECURE_ERASE: 14,
} as const;

/** §5.2.6 the status byte the device writes last. */
export const VirtioBlkStatus = {
  VIRTIO_BLK_S_OK: 0,
  VIRTIO_BLK_S_IOERR: 1,
  VIRTIO_BLK_S_UNSUPP: 2,
} as const;
export type VirtioBlkStatusValue = (typeof VirtioBlkStatus)[keyof typeof VirtioBlkStatus];

/** Sectors are always 512 bytes on the wire, whatever blk_size says (§5.2.6). */
export const SECTOR_SIZE = 512;
export const SECTOR_SHIFT = 9;
/** le32 type, le32 reserved (ioprio), le64 sector. */
export const BLK_OUTHDR_SIZE = 16;
/** struct virtio_blk_discard_write_zeroes: le64 sector, le32 num_sectors, le32 flags. */
export const DISCARD_SEGMENT_SIZE = 16;
/** The one flag defined for discard/write-zeroes segments (only valid for WRITE_ZEROES). */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;
/** GET_ID answers with at most this many bytes (not NUL-terminated when all are used). */
export const VIRTIO_BLK_ID_BYTES = 20;

