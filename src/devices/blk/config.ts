/**
 * struct virtio_blk_config (§5.2.4) as bytes in a ConfigSpace, so every access width the
 * driver uses (including v86's byte-split MMIO accesses) reads the same little-endian struct.
 * Only `writeback` is driver-writable (VIRTIO_BLK_F_CONFIG_WCE).
 */
import { ConfigSpace } from '../../virtio/config-space.ts';
import { SECTOR_SIZE } from './spec.ts';

/** Byte offsets of the fields we fill (the struct as laid out in §5.2.4). */
export const BlkConfigOffset = {
  CAPACITY: 0, // le64, in 512-byte sectors
  SIZE_MAX: 8, // le32
  SEG_MAX: 12, // le32
  GEOMETRY_CYLINDERS: 16, // le16 (we do not offer GEOMETRY: all zero)
  GEOMETRY_HEADS: 18, // u8
  GEOMETRY_SECTORS: 19, // u8
  BLK_SIZE: 20, // le32
  PHYSICAL_BLOCK_EXP: 24, // u8: log2(physical block / logical block)
  ALIGNMENT_OFFSET: 25, // u8
  MIN_IO_SIZE: 26, // le16, in logical blocks
  OPT_IO_SIZE: 28, // le32, in logical blocks
  WRITEBACK: 32, // u8: 1 write-back, 0 write-through
  NUM_QUEUES: 34, // le16 (meaningful with MQ only)
  MAX_DISCARD_SECTORS: 36, // le32
  MAX_DISCARD_SEG: 40, // le32
  DISCARD_SECTOR_ALIGNMENT: 44, // le32
  MAX_WRITE_ZEROES_SECTORS: 48, // le32
  MAX_WRITE_ZEROES_SEG: 52, // le32
  WRITE_ZEROES_MAY_UNMAP: 56, // u8
} as const;

/**
 * Up to and including the write-zeroes fields (+3 bytes of padding). The secure-erase and
 * zoned fields that follow exist only with features we do not offer, so Linux never reads them.
 */
export const BLK_CONFIG_SIZE = 60;

/** The limits the device advertises and enforces. Sector counts are 512-byte sectors. */
export interface BlkLimits {
  /** Largest single data segment a driver may use (size_max, bytes). */
  readonly sizeMax: number;
  /** Most data segments per request (seg_max). */
  readonly segMax: number;
  /** Logical block size reported to the guest (blk_size). */
  readonly blkSize: number;
  /** log2(physical block / blk_size): hints the guest to align to the host's 4 KiB pages. */
  readonly physicalBlockExp: number;
  /** Minimum / optimal I/O size in blk_size units (0 = no hint). */
  readonly minIoSize: number;
  readonly optIoSize: number;
  /** Per discard segment, and segments per request. */
  readonly maxDiscardSectors: number;
  readonly maxDiscardSeg: number;
  /** Guests split discards on this boundary (sectors). Not enforced: it is a hint. */
  readonly discardSectorAlignment: number;
  readonly maxWriteZeroesSectors: number;
  readonly maxWriteZeroesSeg: number;
  /**
   * 0: a WRITE_ZEROES with the unmap flag still writes zeroes. Ours always does (the
   * backends have no cheaper "deallocate" that guarantees zeroes), so we say so.
   */
  readonly writeZeroesMayUnmap: boolean;
}

export const DEFAULT_BLK_LIMITS: BlkLimits = {
  // seg_max × size_max bounds every request Linux builds (budget.ts): 254 × 64 KiB is just
  // under 16 MiB, far above Linux's default 1280 KiB; a 4 KiB-page request needs 254 pieces anyway.
  sizeMax: 64 << 10,
  // queue size − 2 (header and status), as Linux sizes its sg tables without indirect descriptors.
  segMax: 254,
  // SeaBIOS refuses any blk_size but 512, and it drives the disk during POST.
  blkSize: SECTOR_SIZE,
  physicalBlockExp: 3,
  minIoSize: 8,
  optIoSize: 0,
  // Discard and write-zeroes cost host work proportional to their size (we write zeroes):
  // one 16 MiB range per request keeps it under BLK_MAX_REQUEST_BYTES (segments × sectors is
  // what a request may zero). Linux takes max_*_sectors as its per-request limit and sends
  // write-zeroes as one range anyway; discards then come one range per request.
  maxDiscardSectors: 32768,
  maxDiscardSeg: 1,
  discardSectorAlignment: 8,
  maxWriteZeroesSectors: 32768,
  maxWriteZeroesSeg: 1,
  writeZeroesMayUnmap: false,
};

export class BlkConfig {
  readonly space: ConfigSpace;
  readonly capacitySectors: number;
  /** The mode last seen, to tell the device about changes only. */
  private lastWriteback = false;

  constructor(
    capacityBytes: number,
    readonly limits: BlkLimits,
    /** writeback after reset (write-back when the device can flush). */
    private readonly writebackDefault: boolean,
    /** The driver flipped `writeback` (normalised to 0/1 before this is called). */
    private readonly onWritebackChanged: (writeback: boolean) => void = () => {},
  ) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0 || capacityBytes % SECTOR_SIZE !== 0) {
      throw new RangeError(`virtio-blk: capacity ${capacityBytes} bytes is not a multiple of ${SECTOR_SIZE}`);
    }
    this.capacitySectors = capacityBytes / SECTOR_SIZE;
    this.space = new ConfigSpace(
      BLK_CONFIG_SIZE,
      (offset) => offset === BlkConfigOffset.WRITEBACK,
      // Anything but 0 means write-back; keep the byte 0/1 so the driver reads back what it meant.
      () => this.setWriteback(this.space.getU8(BlkConfigOffset.WRITEBACK) !== 0),
    );
    const s = this.space;
    const O = BlkConfigOffset;
    s.setU64(O.CAPACITY, BigInt(this.capacitySectors));
    s.setU32(O.SIZE_MAX, limits.sizeMax);
    s.setU32(O.SEG_MAX, limits.segMax);
    s.setU32(O.BLK_SIZE, limits.blkSize);
    s.setU8(O.PHYSICAL_BLOCK_EXP, limits.physicalBlockExp);
    s.setU8(O.ALIGNMENT_OFFSET, 0);
    s.setU16(O.MIN_IO_SIZE, limits.minIoSize);
    s.setU32(O.OPT_IO_SIZE, limits.optIoSize);
    s.setU16(O.NUM_QUEUES, 1);
    s.setU32(O.MAX_DISCARD_SECTORS, limits.maxDiscardSectors);
    s.setU32(O.MAX_DISCARD_SEG, limits.maxDiscardSeg);
    s.setU32(O.DISCARD_SECTOR_ALIGNMENT, limits.discardSectorAlignment);
    s.setU32(O.MAX_WRITE_ZEROES_SECTORS, limits.maxWriteZeroesSectors);
    s.setU32(O.MAX_WRITE_ZEROES_SEG, limits.maxWriteZeroesSeg);
    s.setU8(O.WRITE_ZEROES_MAY_UNMAP, limits.writeZeroesMayUnmap ? 1 : 0);
    this.resetWriteback();
  }

  /** The `writeback` byte as the driver last left it. */
  get writeback(): boolean {
    return this.space.getU8(BlkConfigOffset.WRITEBACK) !== 0;
  }

  /** Set the cache mode (the driver's write, or the device at FEATURES_OK); tells the device of a change. */
  setWriteback(writeback: boolean): void {
    this.space.setU8(BlkConfigOffset.WRITEBACK, writeback ? 1 : 0);
    if (writeback === this.lastWriteback) return;
    this.lastWriteback = writeback;
    this.onWritebackChanged(writeback);
  }

  /**
   * Snapshot restore: the mode the driver had left, without telling the device (nothing
   * changed for the driver, so no flush) or the transport (no config change either).
   */
  restoreWriteback(writeback: boolean): void {
    this.space.bytes[BlkConfigOffset.WRITEBACK] = writeback ? 1 : 0;
    this.lastWriteback = writeback;
  }

  /** Device reset: back to the default cache mode (like a power cycle). */
  resetWriteback(): void {
    this.space.setU8(BlkConfigOffset.WRITEBACK, this.writebackDefault ? 1 : 0);
    this.lastWriteback = this.writebackDefault;
  }
}
