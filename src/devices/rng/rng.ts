/**
 * virtio-rng (§5.4): the smallest useful virtio device, and the lab's worked example.
 *
 * The whole protocol: the driver puts empty, device-writable buffers on the one queue
 * ("requestq") and kicks; the device fills each with random bytes and returns it with
 * the number of bytes written. No feature bits, no config space.
 *
 * Everything else — negotiation, queue setup, validation of the guest's rings,
 * interrupts, reset — is the transport's and the queue engine's job; a device only turns
 * chains into completions.
 */
import { DeviceId, PciClass } from '../../virtio/constants.ts';
import type { DeviceContext, VirtioDevice } from '../../virtio/device.ts';
import { RegionCursor } from '../../virtio/queue/descriptor-chain.ts';

/** crypto.getRandomValues refuses more than 65536 bytes per call. */
const MAX_RANDOM_CHUNK = 65536;
/**
 * Cap per request: the device may return fewer bytes than the buffer holds (§5.4.6.1: used.len
 * says how many), and a guest offering gigabytes of (aliased) buffers must not stall the
 * emulator thread. Linux's virtio-rng asks for SMP_CACHE_BYTES (64 on x86; older kernels
 * rng_buffer_size(), ≥ 32) per request: a page is 64× that. Per kick: queue size (64) × 4 KiB.
 */
export const RNG_MAX_BYTES_PER_REQUEST = 4096;
/** Largest queue the device offers; with the cap above, the bound on one kick's work. */
export const RNG_QUEUE_SIZE = 64;

export type RandomSource = (buffer: Uint8Array) => void;

const cryptoRandom: RandomSource = (buffer) => {
  for (let at = 0; at < buffer.length; at += MAX_RANDOM_CHUNK) {
    // Guest RAM is a plain (non-shared) ArrayBuffer, which getRandomValues requires.
    globalThis.crypto.getRandomValues(buffer.subarray(at, at + MAX_RANDOM_CHUNK) as Uint8Array<ArrayBuffer>);
  }
};

export class VirtioRng implements VirtioDevice {
  readonly name = 'virtio-rng';
  readonly deviceId = DeviceId.ENTROPY;
  readonly deviceFeatures = 0n;
  /** One queue: requestq. */
  readonly queueMaxSizes = [RNG_QUEUE_SIZE];
  readonly pciClass = PciClass.OTHER;
  /** Bytes handed to the guest so far (for the UI). */
  bytesServed = 0;

  private ctx: DeviceContext | undefined;

  /** `random` is injectable so tests can be deterministic. */
  constructor(private readonly random: RandomSource = cryptoRandom) {}

  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
  }

  reset(): void {
    this.ctx = undefined;
  }

  notify(queueIndex: number): void {
    const ctx = this.ctx;
    const queue = ctx?.queue(queueIndex);
    if (!ctx || !queue) return;

    // Drain everything the driver made available, then interrupt once for the batch.
    // A malformed chain makes pop() throw; the transport catches it at the kick and
    // marks the device DEVICE_NEEDS_RESET, so there is nothing to handle here.
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const cursor = new RegionCursor(ctx.memory, chain.writable);
      // Write random bytes straight into guest RAM, region by region.
      const written = cursor.fill(Math.min(chain.writableLength, RNG_MAX_BYTES_PER_REQUEST), this.random);
      this.bytesServed += written;
      queue.pushUsed(chain.headIndex, written);
    }
    ctx.signalUsed(queue);
  }
}
