import { describe, expect, it } from 'vitest';
import { figure } from '../stats.ts';
import { DISK_JOBS } from './fio.ts';
import { DISTURBED_CORES, diskRatios, type DiskColumnId, type Sample } from './blk.ts';

const samplesOf = (values: number[], disturbedRound = -1): Sample[] =>
  values.map((value, i) => ({ value, foreignCores: i === disturbedRound ? DISTURBED_CORES + 0.1 : 0.1 }));
const samples: Record<DiskColumnId, Sample[]> = {
  ide: samplesOf([100, 90, 110]),
  'virtio-mem': samplesOf([300, 310, 290]),
  'virtio-opfs': samplesOf([200, 150, 250], 2),
  'raw-opfs': samplesOf([1000, 1000, 1000]),
};
import { renderMarkdown, type BenchResults } from './report.ts';
import { NICS, TransferSamples, type NetResults, type NicResult } from './net.ts';

const machine: BenchResults['machine'] = {
  date: '2026-11-21T00:00:00.000Z',
  cores: 2,
  cpu: 'test cpu',
  memGiB: 24,
  os: 'Linux',
  node: 'v20',
  chromium: '156',
  v86: '0.5',
  guestKernel: '6.1',
  quick: false,
};

describe('bench report', () => {
  it('puts each disk job in a row with its ratios against the IDE and raw OPFS columns', () => {
    const job = DISK_JOBS.find((j) => j.id === 'rnd-read-32')!;
    const md = renderMarkdown({
      machine,
      disk: {
        seconds: 5,
        rounds: 3,
        diskMiB: 256,
        dropped: 1,
        samples: 13,
        foreignCores: 0.2,
        rows: [
          {
            job,
            cells: {
              ide: { value: figure([100, 90, 110]), dropped: 0 },
              'virtio-mem': { value: figure([300, 310, 290]), dropped: 0 },
              'virtio-opfs': { value: figure([200, 150]), dropped: 1 },
              'raw-opfs': { value: figure([1000, 1000, 1000]), dropped: 0 },
            },
            ratios: diskRatios((id) => samples[id]),
          },
        ],
      },
    });
    const line = md.split('\n').find((l) => l.startsWith(`| ${job.label}`))!;
    expect(line.split(' | ').map((c) => c.trim())).toEqual([
      `| ${job.label}`,
      '100 (90–110)',
      '300 (290–310)',
      '175 (150–200) [1 dropped]',
      '1000 (1000–1000)',
      // per round 3, 3.44, 2.64: median 3, half-range 0.40 = 13 %
      '3.00× ±13 %',
      // rounds 1 and 2 only (round 3's OPFS sample was disturbed): 200/100, 150/90
      '1.83× ±9 %',
      '0.58× ±16 %', // 200/300, 150/310
      '0.17× ±14 % |', // 200/1000, 150/1000
    ]);
    expect(md).toMatch(/dropped: 1 of 13/);
    expect(md).toContain('2 cores (test cpu)');
    expect(md).not.toContain('### Network');
  });

  it('takes a ratio over every round, marked, when fewer than two rounds were undisturbed', () => {
    const busy = (values: number[]) => values.map((value) => ({ value, foreignCores: DISTURBED_CORES + 1 }));
    const cols: Record<DiskColumnId, Sample[]> = { ide: busy([100, 200]), 'virtio-mem': busy([50, 100]), 'virtio-opfs': [], 'raw-opfs': [] };
    const r = diskRatios((id) => cols[id]);
    expect(r.memOverIde?.runs).toEqual([0.5, 0.5]);
    expect(r.overDisturbed).toEqual(['memOverIde']);
    expect(r.opfsOverMem).toBeUndefined();
  });

  it('marks a --quick run as too short to quote', () => {
    expect(renderMarkdown({ machine: { ...machine, quick: true } })).toMatch(/--quick: too short to quote/);
  });
  it('gives ours / stock per round with its spread, and the nc download on its own line', () => {
    // Three rounds: ours and stock virtio-net side by side in each.
    const nic = (down: number[], downI: number[], nc?: { down: number[]; downI: number[] }): NicResult => {
      const t = new TransferSamples();
      down.forEach((d, i) => {
        t.add({ downMiBps: d, upMiBps: 2, downInstrPerMiB: downI[i]!, upInstrPerMiB: 3e6 });
        if (nc) t.addNc({ downMiBps: nc.down[i]!, downInstrPerMiB: nc.downI[i]! });
      });
      return { pingMs: figure([1, 1, 1]), ...t.result() };
    };
    const ours = nic([30, 20, 40], [1e6, 1e6, 1.2e6], { down: [10, 8, 12], downI: [4e6, 4e6, 5e6] });
    const stock = nic([10, 10, 10], [3e6, 2e6, 3e6], { down: [5, 8, 6], downI: [6e6, 6e6, 6e6] });
    const ne2k = nic([1, 1, 1], [9e6, 9e6, 9e6]);
    expect(ne2k.ncDownMiBps).toBeUndefined();
    const net: NetResults = { pings: 5, mib: 32, rounds: 3, rawWsMs: figure([0.1]), nics: { ours, 'stock-virtio': stock, 'stock-ne2k': ne2k } };
    const md = renderMarkdown({ machine, net });
    const stockLine = md.split('\n').find((l) => l.startsWith(`- ours / ${NICS[1].label}`))!;
    // down per round 3, 2, 4: median 3, half-range 1 = 33 %; instructions 1/3, 1/2, 1.2/3: median 0.4, half-range 0.083 = 21 %.
    expect(stockLine).toContain('host → guest 3.00× ±33 %');
    expect(stockLine).toContain('guest → host 1.00× ±0 %');
    expect(stockLine).toContain('per MiB down 0.40× ±21 %, up 1.00× ±0 %');
    const ncLine = md.split('\n').find((l) => l.startsWith('- host → guest with busybox nc'))!;
    // nc per round: 10/5, 8/8, 12/6 → median 2, half-range 0.5 = 25 %; instructions 4/6, 4/6, 5/6 → 0.67, half-range 0.083 = 13 %.
    expect(ncLine).toContain(`${NICS[0].label} 10.00 (8.00–12.00) MiB/s, 4.0 Minstr/MiB`);
    expect(ncLine).toContain(`${NICS[1].label} 6.00 (5.00–8.00) MiB/s, 6.0 Minstr/MiB`);
    expect(ncLine).toContain('ours / stock 2.00× ±25 % the throughput, 0.67× ±13 % the instructions per MiB');
    expect(md).not.toMatch(/stock v86's ne2k \d/);
    // No ceiling measured: no ceiling line.
    expect(md).not.toContain("the link's ceiling");
    const withCeiling = renderMarkdown({ machine, net: { ...net, wsCeiling: { superMiBps: figure([22, 20, 25]), mtuMiBps: figure([6, 9, 7]) } } });
    const ceilingLine = withCeiling.split('\n').find((l) => l.startsWith("- the link's ceiling"))!;
    expect(ceilingLine).toContain('took 22.0 (20.0–25.0) MiB/s in 64 KiB messages');
    expect(ceilingLine).toContain('and 7.0 (6.0–9.0) MiB/s in 1514-byte ones');
  });
});
