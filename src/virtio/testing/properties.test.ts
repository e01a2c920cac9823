import fc from 'fast-check';
import { describe, it } from 'vitest';
import { virtioProperties } from './properties.ts';

describe('virtio properties (bounded; `npm run fuzz` runs them longer)', () => {
  for (const { name, property } of virtioProperties()) {
    it(name, () => {
      fc.assert(property, { numRuns: 300 });
    });
  }
});
