/** virtio-blk as the lab plugs, shows and fuzzes it (see ../descriptor.ts). */
import type { BlockBackend, BlockBackendErrorKind } from '../../backends/block-backend.ts';
import type { DeviceDescriptor } from '../descriptor.ts';
import { VirtioBlk } from './blk.ts';
import { blkConfigFields, blkDecoder } from './inspect.ts';
import { blkKickBudgetBytes } from './budget.ts';
import { DEFAULT_BLK_LIMITS, type BlkLimits } from './config.ts';
import { blkState } from './state.ts';

/** A disk to attach as virtio-blk (/dev/vda). */
export interface BlkLabOptions {
  backend: BlockBackend;
  /** The disk's name: its serial (/sys/block/vda/serial), at most 20 bytes. */
  name: string;
  /** The backend failed; 'quota' means storage is full. The guest got I/O errors. */
  onBackendError?(kind: BlockBackendErrorKind, message: string): void;
  /**
   * Other advertised limits (benchmarks: bench/blk-segments.ts). Must keep seg_max × size_max
   * within the 16 MiB request cap, which kickBudget below assumes (checkLimits enforces it).
   */
  limits?: Partial<BlkLimits>;
}

export const blkDevice: DeviceDescriptor<'blk', BlkLabOptions, VirtioBlk> = {
  kind: 'blk',
  name: 'virtio-blk',
  queueNames: ['requestq'],
  create: (options, { defer, later }) =>
    options && new VirtioBlk({ backend: options.backend, serial: options.name, onBackendError: options.onBackendError, limits: options.limits, defer, later }),
  owns: (device): device is VirtioBlk => device instanceof VirtioBlk,
  config: blkConfigFields,
  decoder: blkDecoder,
  stats: (device) => ({
    ...device.stats.toRecord(),
    capacitySectors: device.capacitySectors,
    writeback: device.writeback ? 1 : 0,
    readOnly: device.backend.readOnly ? 1 : 0,
    cachedWriteBytes: device.backend.cachedWriteBytes ?? 0,
    mediumMs: device.backend.mediumMs ?? 0,
    backgroundMs: device.backend.backgroundMs ?? 0,
    // 1: a writer worker stores this disk's writes (write-behind); 0: this worker does.
    writeBehind: device.backend.writerMs === undefined ? 0 : 1,
    writerMs: device.backend.writerMs ?? 0,
    // The read cache in front of an OPFS disk: chunk hits and fills, bytes held now.
    readCacheHits: device.backend.readCache?.hits ?? 0,
    readCacheMisses: device.backend.readCache?.misses ?? 0,
    readCacheBytes: device.backend.readCache?.heldBytes ?? 0,
  }),
  // One pass: 16 MiB of data (counted twice on reads: the copy and v86's dirty notice) plus
  // header, segments, GET_ID answer and status of each of 256 parsed requests (budget.ts).
  kickBudget: { bytes: blkKickBudgetBytes(DEFAULT_BLK_LIMITS, 256) },
  state: blkState,
  fuzzSubject: async () => (await import('./fuzz-subject.ts')).blkSubject,
  fuzzProperties: async () => (await import('./properties.ts')).blkProperties(),
};
