/**
 * virtio-blk's part of a VM snapshot (see virtio/state/device-state.ts): its config space as
 * the driver saw it. Once quiesced the device holds no chain and nothing is pending (the
 * backends are synchronous), so the config is all there is. Counters restart from zero.
 *
 * Restored: every config byte but capacity and writeback must match (the limits come from
 * options, which must be the same); writeback comes back as the driver left it (CONFIG_WCE);
 * capacity is the new backend's, and when that differs from what the driver saw, the driver
 * gets a configuration change notification (§5.2.6: it then re-reads capacity).
 */
import type { DeviceStateHooks } from '../../virtio/state/device-state.ts';
import { bytesToBase64 } from '../../virtio/state/base64.ts';
import type { VirtioBlk } from './blk.ts';
import { BLK_CONFIG_SIZE, BlkConfigOffset } from './config.ts';

/** Config bytes that may differ from a fresh device's: capacity (le64) and writeback. */
function restoredByte(offset: number): boolean {
  return (offset >= BlkConfigOffset.CAPACITY && offset < BlkConfigOffset.CAPACITY + 8) || offset === BlkConfigOffset.WRITEBACK;
}

export const blkState: DeviceStateHooks<VirtioBlk> = {
  busy: (blk) => blk.outstandingWork,
  quiesce: (blk) => blk.settleNow(),
  save: (blk) => ({ config: bytesToBase64(blk.config.space.bytes) }),
  restore(blk, state, host) {
    const field = state.at('config');
    const config = field.bytes(BLK_CONFIG_SIZE);
    if (config.length !== BLK_CONFIG_SIZE) field.fail(`${config.length} bytes, virtio_blk_config has ${BLK_CONFIG_SIZE}`);
    const now = blk.config.space.bytes;
    for (let i = 0; i < BLK_CONFIG_SIZE; i++) {
      if (!restoredByte(i) && config[i] !== now[i]) field.fail(`byte ${i} is ${config[i]}, this disk's is ${now[i]}: saved with other limits`);
    }
    const savedCapacity = new DataView(config.buffer, config.byteOffset).getBigUint64(BlkConfigOffset.CAPACITY, true);
    const writeback = config[BlkConfigOffset.WRITEBACK] !== 0;
    const resized = savedCapacity !== BigInt(blk.capacitySectors);
    return () => {
      blk.config.restoreWriteback(writeback);
      if (resized) host.configChanged();
    };
  },
};
