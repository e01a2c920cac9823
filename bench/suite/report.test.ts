import { describe, expect, it } from 'vitest';
import { figure } from '../stats.ts';
import { DISK_JOBS } from './fio.ts';
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
        rows: [
          {
            job,
            cells: {
              ide: { value: figure([100, 90, 110]) },
              'virtio-mem': { value: figure([300, 310, 290]) },
              'virtio-opfs': { value: figure([200, 150, 250]) },
              'raw-opfs': { value: figure([1000, 1000, 1000]) },
            },
          },
        ],
      },
    });
    const line = md.split('\n').find((l) => l.startsWith(`| ${job.label}`))!;
    expect(line.split(' | ').map((c) => c.trim())).toEqual([
      `| ${job.label}`,
      '100 (90–110)',
      '300 (290–310)',
      '200 (150–250)',
      '1000 (1000–1000)',
      '3.00×',
      '2.00×',
      '0.20× |',
    ]);
    expect(md).toContain('2 cores (test cpu)');
    expect(md).not.toContain('### Network');
  });

  it('marks a --quick run as too short to quote', () => {
    expect(renderMarkdown({ machine: { ...machine, quick: true } })).toMatch(/--quick: too short to quote/);
  });
});
