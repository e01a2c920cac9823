/**
 * The unit tests' bounded slice of a fuzz campaign: one vitest case per property, with a
 * numRuns small enough for CI (`npm run fuzz` runs the same properties for as long as asked).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { NamedProperty } from './invariants.ts';

export function describeProperties(title: string, properties: readonly NamedProperty[], numRuns: number): void {
  describe(`${title} (bounded; \`npm run fuzz\` runs them longer)`, () => {
    for (const { name, property } of properties) {
      it(name, () => {
        fc.assert(property, { numRuns });
      });
    }
  });
}
