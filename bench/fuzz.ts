/**
 * Long fuzz campaign over the virtio core's properties (src/virtio/testing/properties.ts),
 * the same ones the unit tests run briefly.
 *
 *   npm run fuzz -- --seconds 60 [--chunk 200] [--seed 42] [--only garbage]
 *
 * Runs chunks of `--chunk` cases per property round-robin until time is up, each chunk
 * with a fresh seed; prints cases, time, the error reasons provoked, and any failure with
 * its seed and shrunk counterexample. Exits 1 on failure.
 */
import fc from 'fast-check';
import { reasonHistogram, virtioProperties } from '../src/virtio/testing/properties.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seconds = Number(arg('seconds') ?? 30);
const chunk = Number(arg('chunk') ?? 200);
const only = arg('only');
let seed = Number(arg('seed') ?? Date.now() % 2 ** 31);

const properties = virtioProperties().filter((p) => !only || p.name.includes(only));
if (properties.length === 0) {
  console.error(`no property matches "${only}"`);
  process.exit(2);
}

const started = performance.now();
const deadline = started + seconds * 1000;
const cases = new Map<string, number>(properties.map((p) => [p.name, 0]));
let failures = 0;

console.log(`fuzzing ${properties.length} properties for ${seconds}s, ${chunk} cases per chunk, first seed ${seed}`);
outer: while (performance.now() < deadline) {
  for (const { name, property } of properties) {
    const details = fc.check(property, { numRuns: chunk, seed });
    cases.set(name, (cases.get(name) ?? 0) + details.numRuns);
    if (details.failed) {
      failures++;
      console.error(`\nFAIL: ${name} (seed ${seed})`);
      console.error(fc.defaultReportMessage(details) ?? '');
      break outer;
    }
    seed = (seed + 1) % 2 ** 31;
    if (performance.now() >= deadline) break;
  }
}

const elapsed = (performance.now() - started) / 1000;
let total = 0;
for (const [name, n] of cases) {
  total += n;
  console.log(`  ${String(n).padStart(8)} cases  ${name}`);
}
console.log(`${total} cases in ${elapsed.toFixed(1)}s (${Math.round(total / elapsed)}/s), ${failures} failure(s)`);
const reasons = [...reasonHistogram].sort((a, b) => b[1] - a[1]);
console.log(`guest errors provoked (${reasons.length} distinct reasons, numbers masked):`);
for (const [reason, n] of reasons.slice(0, 40)) console.log(`  ${String(n).padStart(7)}  ${reason}`);
process.exit(failures > 0 ? 1 : 0);
