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
});
