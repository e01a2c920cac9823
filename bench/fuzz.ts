/**
 * Long fuzz campaign over every parser a guest or a network peer controls, with the same
 * fast-check properties the unit tests run briefly:
 *
 *   ring   split and packed virtqueues (src/virtio/testing/properties.ts)
 *   pci    virtio-pci register accesses (src/virtio/testing/transport-properties.ts), on the
 *          loopback device and on every registered device (src/devices/registry.ts)
 *   bounded  host work per kick under adversarial rings on every registered device, held to
 *          the queue engine's budget (src/virtio/budget.ts) and the device's kickBudget
 *          (src/virtio/testing/bounded-work-properties.ts; the ring campaign has the loopback's)
 *   blk, net, console, …  each registered device's own properties (its folder's
 *          properties.ts, through the descriptor's fuzzProperties)
 *   relay  packet parsers, switch + gateway, TCP NAT (src/wire/testing/packet-properties.ts,
 *          src/relay/fuzz/*-properties.ts)
 *   snapshot  the state file parser: truncations, bit flips, mutations behind the checksums,
 *          huge length claims (src/vm/snapshot/testing/snapshot-properties.ts)
 *   device-state  the virtio functions' saved state in that file: valid states from every
 *          registered device round trip, mutated ones (and rewritten RAM) are refused cleanly
 *          or restore into working functions, within bounded work (src/vm/testing/device-state-properties.ts)
 *
 *   npm run fuzz -- --seconds 600 [--only blk] [--slice 1000] [--seed 42] [--coverage]
 *   npm run fuzz -- --only "blk: garbage" --replay SEED:PATH      (re-run one failure)
 *
 * Round-robin: each campaign in turn gets `--slice` ms of cases for its next property (chunks
 * sized from the property's own rate, a fresh seed per chunk) until time is up. Prints cases and time per property and
 * per campaign, and totals; `--coverage` adds what the cases reached (states, drop and
 * error reasons), and the worst host work per kick the bounded-work properties measured, per
 * metric, as "value / budget, where". A failure prints the seed, the path and the shrunk
 * counterexample, and exits 1.
 */
import fc from 'fast-check';
import { registeredDevices } from '../src/devices/registry.ts';
import { deviceTransportProperties, deviceTransportSubjects } from '../src/devices/testing/transport-subjects.ts';
import { packetProperties } from '../src/wire/testing/packet-properties.ts';
import { gatewayProperties } from '../src/relay/fuzz/gateway-properties.ts';
import { tcpNatProperties } from '../src/relay/fuzz/tcp-properties.ts';
import type { NamedProperty } from '../src/virtio/testing/invariants.ts';
import { virtioProperties } from '../src/virtio/testing/properties.ts';
import { transportProperties } from '../src/virtio/testing/transport-properties.ts';
import { deviceBoundedWorkProperties } from '../src/virtio/testing/bounded-work-properties.ts';
import { worstCases } from '../src/virtio/testing/work-meter.ts';
import { snapshotProperties } from '../src/vm/snapshot/testing/snapshot-properties.ts';
import { deviceStateProperties } from '../src/vm/testing/device-state-properties.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const campaigns: Array<{ campaign: string; properties: NamedProperty[] }> = [
  { campaign: 'ring', properties: virtioProperties() },
  { campaign: 'pci', properties: [...transportProperties(), ...(await deviceTransportProperties())] },
  {
    campaign: 'bounded',
    properties: deviceBoundedWorkProperties(
      (await deviceTransportSubjects()).map(({ descriptor, subject }) => ({ subject, kickBudget: descriptor.kickBudget, stats: (device) => descriptor.stats(device) })),
    ),
  },
  ...(await Promise.all(registeredDevices.map(async (d) => ({ campaign: d.kind, properties: (await d.fuzzProperties?.()) ?? [] })))),
  { campaign: 'relay', properties: [...packetProperties(), ...gatewayProperties(), ...tcpNatProperties()] },
  { campaign: 'snapshot', properties: await snapshotProperties() },
  { campaign: 'device-state', properties: deviceStateProperties() },
];

const seconds = Number(arg('seconds') ?? 30);
const only = arg('only');
const replay = arg('replay');
const showCoverage = process.argv.includes('--coverage');
let seed = Number(arg('seed') ?? Date.now() % 2 ** 31);

interface Entry extends NamedProperty {
  campaign: string;
  cases: number;
  ms: number;
  /** Cases per ms, learned as it runs, to size chunks to the slice. */
  rate: number;
}

const entries: Entry[] = campaigns.flatMap(({ campaign, properties }) =>
  properties
    .filter((p) => !only || campaign === only || p.name.includes(only))
    .map((p) => ({ ...p, campaign, cases: 0, ms: 0, rate: 0.05 })),
);
if (entries.length === 0) {
  console.error(`no campaign or property matches "${only}"`);
  process.exit(2);
}

function report(e: Entry, details: fc.RunDetails<unknown>, chunkSeed: number): void {
  console.error(`\nFAIL [${e.campaign}] ${e.name}`);
  console.error(`  seed ${chunkSeed}, path ${details.counterexamplePath}`);
  console.error(`  replay: npm run fuzz -- --only "${e.name}" --replay ${chunkSeed}:${details.counterexamplePath}`);
  console.error(`  error: ${details.errorInstance instanceof Error ? details.errorInstance.stack : String(details.errorInstance)}`);
  console.error(`  counterexample: ${fc.stringify(details.counterexample)}`);
}

if (replay) {
  const [s, path] = replay.split(':');
  const e = entries[0];
  const details = fc.check(e.property, { seed: Number(s), path, endOnFailure: true });
  if (details.failed) report(e, details, Number(s));
  else console.log(`[${e.campaign}] ${e.name}: passes at ${replay}`);
  process.exit(details.failed ? 1 : 0);
}

const started = performance.now();
const deadline = started + seconds * 1000;
let failed = false;
const groups = [...new Set(entries.map((e) => e.campaign))].map((c) => entries.filter((e) => e.campaign === c));
// 1 s slices, shorter when the run is too short for every property of every campaign to get one.
const sliceMs = Number(arg('slice') ?? Math.min(1000, (seconds * 1000) / (groups.length * Math.max(...groups.map((g) => g.length)))));
console.log(`fuzzing ${entries.length} properties in ${groups.length} campaigns for ${seconds}s, ${Math.round(sliceMs)} ms slices, first seed ${seed}`);
outer: for (let round = 0; performance.now() < deadline; round++) {
  // Campaigns take turns (equal time each); within one, its properties take turns.
  for (const group of groups) {
    const e = group[round % group.length];
    const sliceEnd = Math.min(deadline, performance.now() + sliceMs);
    while (performance.now() < sliceEnd) {
      const numRuns = Math.max(5, Math.min(5000, Math.round(e.rate * (sliceEnd - performance.now()))));
      const t0 = performance.now();
      const details = fc.check(e.property, { numRuns, seed });
      const ms = performance.now() - t0;
      e.cases += details.numRuns;
      e.ms += ms;
      e.rate = e.cases / Math.max(1, e.ms);
      if (details.failed) {
        report(e, details, seed);
        failed = true;
        break outer;
      }
      seed = (seed + 1) % 2 ** 31;
    }
    if (performance.now() >= deadline) break;
  }
}

const elapsed = (performance.now() - started) / 1000;
const pad = (s: string | number, n: number) => String(s).padStart(n);
let total = 0;
for (const { campaign } of campaigns) {
  const mine = entries.filter((e) => e.campaign === campaign);
  if (mine.length === 0) continue;
  const cases = mine.reduce((n, e) => n + e.cases, 0);
  const ms = mine.reduce((n, e) => n + e.ms, 0);
  total += cases;
  console.log(`\n${campaign}: ${cases} cases in ${(ms / 1000).toFixed(1)}s`);
  for (const e of mine) {
    console.log(`  ${pad(e.cases, 8)} cases ${pad((e.ms / 1000).toFixed(1), 6)}s ${pad(Math.round((e.cases * 1000) / Math.max(1, e.ms)), 6)}/s  ${e.name}`);
    if (!showCoverage || !e.coverage) continue;
    for (const [what, n] of [...e.coverage].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`        ${pad(n, 9)}  ${what}`);
  }
}
printWorstCases();
console.log(`\ntotal: ${total} cases in ${elapsed.toFixed(1)}s (${Math.round(total / elapsed)}/s), ${failed ? 1 : 0} failure(s)`);
process.exit(failed ? 1 : 0);

/** The worst host work per kick the bounded-work properties saw, per metric, with its budget. */
function printWorstCases(): void {
  const rows = worstCases.entries();
  if (rows.length === 0) return;
  console.log('\nworst case per kick (value / budget, where):');
  const width = Math.max(...rows.map(([metric]) => metric.length));
  const num = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(1));
  for (const [metric, { value, budget, where }] of rows) {
    const share = budget ? ` (${((100 * value) / budget).toFixed(budget && value / budget < 0.01 ? 2 : 0)} %)` : '';
    const short = where.length > 100 ? `${where.slice(0, 97)}...` : where;
    console.log(`  ${metric.padEnd(width)}  ${pad(num(value), 14)} / ${pad(budget === undefined ? '-' : num(budget), 14)}${share}  ${short}`);
  }
}
