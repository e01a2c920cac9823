import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Feature, hasFeature } from '../../virtio/constants.ts';
import { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { restoreProperty, type RestoreSubject, type RestoreWorld } from '../testing/restore-property.ts';
import { rngDevice } from './index.ts';
import { VirtioRng, type RandomSource } from './rng.ts';

/** The host's random source: a counter, carried over a snapshot like the real one would simply go on. */
function countingSource(): { next: number; source: RandomSource } {
  const host = {
    next: 0,
    source: (buf: Uint8Array) => {
      for (let i = 0; i < buf.length; i++) buf[i] = (host.next++ * 37 + 11) & 0xff;
    },
  };
  return host;
}

interface RngWorld extends RestoreWorld {
  readonly host: ReturnType<typeof countingSource>;
  readonly ring: RingLayout;
}

type RngStep = { kind: 'request'; sizes: number[]; indirect: boolean };

const rngSubject: RestoreSubject<RngWorld, RngStep> = {
  name: 'virtio-rng',
  queues: 1,
  steps: fc.record({
    kind: fc.constant('request' as const),
    sizes: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 3 }),
    indirect: fc.boolean(),
  }),
  create(ring, drop) {
    const host = countingSource();
    const driver = DriverMock.create(new VirtioRng(host.source), { pci: { ring, deviceState: rngDevice.state } });
    driver.initRings({ features: driver.deviceFeatures() & ~drop });
    return { driver, host, ring };
  },
  rebuild(old) {
    const fn = new VirtioPciFunction(new VirtioRng(old.host.source), { ring: old.ring, deviceState: rngDevice.state });
    return { world: old, fn };
  },
  step({ driver }, step) {
    const q = driver.queues[0]!;
    const indirect = step.indirect && hasFeature(driver.features, Feature.VIRTIO_F_RING_INDIRECT_DESC);
    if (q.freeDescriptors < (indirect ? 1 : step.sizes.length)) return;
    q.add({ writable: step.sizes, indirect });
  },
  settle() {},
};

describe('virtio-rng snapshots', () => {
  for (const ring of RING_LAYOUTS) {
    it(onRing('traffic goes on after save/restore as if nothing happened', ring), async () => {
      await fc.assert(restoreProperty(rngSubject, ring), { numRuns: 60 });
    });
  }

  it('saves an empty device part and refuses one that is not an object', () => {
    const t = DriverMock.create(new VirtioRng(countingSource().source), { pci: { deviceState: rngDevice.state } });
    t.initRings();
    const state = t.fn.saveState();
    expect(state.device).toEqual({});
    const fresh = new VirtioPciFunction(new VirtioRng(), { deviceState: rngDevice.state });
    fresh.connect({ memory: t.memory, irq: t.irq });
    expect(() => fresh.restoreState({ ...state, device: [] })).toThrow(/device: expected an object/);
    expect(fresh.deviceStatus).toBe(0);
  });
});
