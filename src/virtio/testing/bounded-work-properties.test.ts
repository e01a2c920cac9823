import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deviceTransportSubjects } from '../../devices/testing/transport-subjects.ts';
import { deviceBoundedWorkProperties, loopbackBoundedWorkProperty, type BoundedWorkSubject } from './bounded-work-properties.ts';
import { describeProperties } from './describe-properties.ts';
import { worstCases } from './work-meter.ts';

/** Every registered device with its descriptor's budget and counters (what bench/fuzz.ts builds too). */
const devices: BoundedWorkSubject[] = (await deviceTransportSubjects()).map(({ descriptor, subject }) => ({
  subject,
  kickBudget: descriptor.kickBudget,
  stats: (device) => descriptor.stats(device),
}));

// The loopback property runs in the ring campaign (properties.test.ts); the devices' here.
describeProperties('bounded work per kick on the registered devices', deviceBoundedWorkProperties(devices), 60);

describe('bounded work: the measurements reach the fuzz report', () => {
  it('notes descriptors, regions, chains and time per kick with their budgets', () => {
    worstCases.clear();
    fc.assert(loopbackBoundedWorkProperty(), { numRuns: 20, seed: 1 });
    const worst = new Map(worstCases.entries());
    for (const metric of ['descriptors', 'regions', 'chains', 'bytes', 'ms']) {
      const seen = worst.get(`bounded loopback: per kick ${metric}`);
      expect(seen, metric).toBeDefined();
      expect(seen!.budget, metric).toBeGreaterThan(0);
      expect(seen!.value, metric).toBeLessThanOrEqual(seen!.budget!);
    }
  });
});
