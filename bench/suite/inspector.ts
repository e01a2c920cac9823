/**
 * What the ring inspector costs the guest: fio 4 KiB random-read IOPS (psync, qd1) on a
 * memory disk with the panel hidden vs shown vs shown with a lesson open (its panel follows
 * the repaints: highlights, deltas), alternating so drift hits all three.
 *
 * IOPS over wall time move with whatever else the machine runs (rounds spread 60–210 %), so
 * the cost is also measured in CPU time, which other processes cannot inflate: the CPU our
 * process tree (Chromium: page, worker, compositor) spent per second, and guest
 * instructions retired per CPU-second of it. Their per-round ratios are the figures to read.
 */
import type { BrowserContext } from '@playwright/test';
import { figure, pairedRatio, type Figure } from '../stats.ts';
import { instructionsBetween } from './guests.ts';
import { watchMachineLoad } from './machine-load.ts';
import { labGuest } from './guests.ts';
import { DISK_JOBS, fioCommand, parseFioTerse } from './fio.ts';

export interface InspectorResults {
  seconds: number;
  rounds: number;
  hiddenIops: Figure;
  shownIops: Figure;
  /** Each round's shown/hidden ratio. */
  ratio: Figure;
  lessonIops: Figure;
  /** Each round's lesson-open/hidden ratio. */
  lessonRatio: Figure;
  /** Cores of CPU our process tree used, per state. */
  hiddenCores?: Figure;
  shownCores?: Figure;
  lessonCores?: Figure;
  /** Per round: guest instructions per CPU-second of our tree, shown / hidden and lesson / hidden. */
  instrPerCpuRatio?: Figure;
  lessonInstrPerCpuRatio?: Figure;
}

export async function benchInspector(ctx: BrowserContext, origin: string, opts: { seconds: number; rounds: number; log: (s: string) => void }): Promise<InspectorResults> {
  const g = await labGuest(ctx, origin, 'inspector', 'disk=mem:64&net=none');
  try {
    await g.run('umount /mnt/disk 2>/dev/null; true');
    const job = DISK_JOBS.find((j) => j.id === 'rnd-read-1')!;
    interface Reading {
      iops: number;
      cores: number;
      instrPerCpuS: number;
    }
    const measure = async (): Promise<Reading> => {
      const i0 = (await g.counters()).instructions;
      const load = watchMachineLoad();
      const t0 = performance.now();
      const out = (await g.run(fioCommand(job, '/dev/vda', opts.seconds, 64))).output;
      const { ownCores } = load();
      const cpuS = (ownCores * (performance.now() - t0)) / 1000;
      const instructions = instructionsBetween(i0, (await g.counters()).instructions);
      return { iops: parseFioTerse(out, job).iops, cores: ownCores, instrPerCpuS: cpuS > 0 ? instructions / cpuS : NaN };
    };
    await measure(); // warm-up
    const hidden: Reading[] = [];
    const shown: Reading[] = [];
    const lesson: Reading[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      await g.page.evaluate(() => window.virtioLab.inspector.hide());
      hidden.push(await measure());
      await g.page.evaluate(() => window.virtioLab.inspector.show());
      await g.page.getByTestId('inspector').waitFor();
      shown.push(await measure());
      // The indices lesson's first step: blk tab, avail.idx outlined, a number check waiting.
      await g.page.evaluate(() => window.virtioLab.lessons.open('indices', 1));
      await g.page.getByTestId('lesson-step').waitFor();
      lesson.push(await measure());
      await g.page.evaluate(() => window.virtioLab.lessons.close());
      const f = (r: Reading) => `${r.iops.toFixed(0)} IOPS, ${r.cores.toFixed(2)} cores`;
      opts.log(`  round ${round + 1}: hidden ${f(hidden[round])}, shown ${f(shown[round])}, lesson open ${f(lesson[round])}`);
    }
    await g.page.evaluate(() => window.virtioLab.inspector.hide());
    const pick = (rs: Reading[], k: keyof Reading) => rs.map((r) => r[k]);
    return {
      seconds: opts.seconds,
      rounds: opts.rounds,
      hiddenIops: figure(pick(hidden, 'iops')),
      shownIops: figure(pick(shown, 'iops')),
      ratio: pairedRatio(pick(shown, 'iops'), pick(hidden, 'iops'))!,
      lessonIops: figure(pick(lesson, 'iops')),
      lessonRatio: pairedRatio(pick(lesson, 'iops'), pick(hidden, 'iops'))!,
      hiddenCores: figure(pick(hidden, 'cores')),
      shownCores: figure(pick(shown, 'cores')),
      lessonCores: figure(pick(lesson, 'cores')),
      instrPerCpuRatio: pairedRatio(pick(shown, 'instrPerCpuS'), pick(hidden, 'instrPerCpuS')),
      lessonInstrPerCpuRatio: pairedRatio(pick(lesson, 'instrPerCpuS'), pick(hidden, 'instrPerCpuS')),
    };
  } finally {
    await g.close();
  }
}
