import { describe, expect, it } from 'vitest';
import { figure } from '../stats.ts';
import { ModeSamples, parseRxBytes, withRxBytes } from './net-modes.ts';
import { NICS, type NetResults } from './net.ts';
import { renderMarkdown, type BenchResults } from './report.ts';

/** Only the net section is looked at. */
const machine = { date: 'test', quick: false } as BenchResults['machine'];

/** Three rounds; the relay is twice as fast in round 2, so ratios of medians would differ from medians of ratios. */
function threeRounds(): ModeSamples {
  const s = new ModeSamples();
  const relay = [
    { pingMs: 2, downMiBps: 10, upMiBps: 8 },
    { pingMs: 1, downMiBps: 20, upMiBps: 16 },
    { pingMs: 2, downMiBps: 10, upMiBps: 8 },
  ];
  relay.forEach((r, i) => s.add(i, 'relay', r));
  [
    { pingMs: 0.5, downMiBps: 5, upMiBps: 4 },
    { pingMs: 0.5, downMiBps: 5, upMiBps: 4 },
    { pingMs: 1, downMiBps: 15, upMiBps: 4 },
  ].forEach((r, i) => s.add(i, 'wisp', r));
  [
    { pingMs: 0.4, downMiBps: 2 },
    { pingMs: 0.4, downMiBps: 4 },
    { pingMs: 0.4, downMiBps: 2 },
  ].forEach((r, i) => s.add(i, 'fetch', r));
  return s;
}

describe('network modes in the bench', () => {
  it('divides each mode by the relay round by round, and keeps the spread', () => {
    const r = threeRounds().result();
    expect(r.modes.relay.downMiBps).toEqual(figure([10, 20, 10]));
    expect(r.vsRelay.wisp.downMiBps).toEqual(figure([0.5, 0.25, 1.5]));
    expect(r.vsRelay.wisp.pingMs).toEqual(figure([0.25, 0.5, 0.5]));
    expect(r.vsRelay.wisp.upMiBps).toEqual(figure([0.5, 0.25, 0.5]));
    expect(r.vsRelay.fetch.downMiBps).toEqual(figure([0.2, 0.2, 0.2]));
    // fetch has no upload: no figure rather than a zero.
    expect(r.modes.fetch.upMiBps).toBeUndefined();
    expect(r.vsRelay.fetch.upMiBps).toBeUndefined();
  });

  it('drops a round some mode did not finish, and refuses when none is whole', () => {
    const s = threeRounds();
    s.add(3, 'relay', { pingMs: 100, downMiBps: 1, upMiBps: 1 });
    expect(s.result().modes.relay.pingMs.runs).toEqual([2, 1, 2]);
    const empty = new ModeSamples();
    empty.add(0, 'relay', { pingMs: 1, downMiBps: 1, upMiBps: 1 });
    expect(() => empty.result()).toThrow(/no round has every mode/);
  });

  it('renders a row per mode with its ratios to the relay and their spread', () => {
    const nic = { pingMs: figure([1]), downMiBps: figure([1]), upMiBps: figure([1]), downInstrPerMiB: figure([1]), upInstrPerMiB: figure([1]) };
    const net: NetResults = {
      pings: 5,
      mib: 2,
      rounds: 3,
      rawWsMs: figure([0.1]),
      nics: Object.fromEntries(NICS.map(({ id }) => [id, nic])) as NetResults['nics'],
      modes: threeRounds().result(),
    };
    const md = renderMarkdown({ machine, net });
    const line = (start: string) => md.split('\n').find((l) => l.startsWith(`| ${start}`))!;
    // Spread: half the ratios' range over their median.
    expect(line('wisp').split(' | ').slice(1)).toEqual(['0.50 (0.50–1.00)', '5.00 (5.00–15.00)', '4.00 (4.00–4.00)', '0.50× ±25 %', '0.50× ±125 %', '0.50× ±25 % |']);
    expect(line('fetch').split(' | ').slice(1)).toEqual(['0.40 (0.40–0.40)', '2.00 (2.00–4.00)', '–', '0.20× ±50 %', '0.20× ±0 %', '– |']);
    expect(line('relay').split(' | ').slice(4)).toEqual(['–', '–', '– |']);
  });

  it("reads eth0's received bytes from a download's output, and none when the line is missing", () => {
    const cmd = withRxBytes('wget -q -O /dev/null http://10.0.2.2:1/blob');
    // The download runs between the two reads of the counter.
    expect(cmd.indexOf('rx_bytes')).toBeLessThan(cmd.indexOf('wget'));
    expect(cmd.lastIndexOf('rx_bytes')).toBeGreaterThan(cmd.indexOf('wget'));
    expect(parseRxBytes('@timed 0 1.00 2.00\n@rx 33690000\n')).toBe(33690000);
    expect(parseRxBytes('@timed 0 1.00 2.00\n')).toBeUndefined();
  });
});
