/**
 * What the ring inspector costs the guest: fio 4 KiB random-read IOPS (psync, qd1) on a
 * memory disk with the panel hidden vs shown vs shown with a lesson open (its panel follows
 * the repaints: highlights, deltas), alternating so drift hits all three.
 */
import type { BrowserContext } from '@playwright/test';
import { figure, type Figure } from '../stats.ts';
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
}

export async function benchInspector(ctx: BrowserContext, origin: string, opts: { seconds: number; rounds: number; log: (s: string) => void }): Promise<InspectorResults> {
  const g = await labGuest(ctx, origin, 'inspector', 'disk=mem:64&net=none');
  try {
    await g.run('umount /mnt/disk 2>/dev/null; true');
    const job = DISK_JOBS.find((j) => j.id === 'rnd-read-1')!;
    const iops = async () => parseFioTerse((await g.run(fioCommand(job, '/dev/vda', opts.seconds, 64))).output, job).iops;
    await iops(); // warm-up
    const hidden: number[] = [];
    const shown: number[] = [];
    const lesson: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      await g.page.evaluate(() => window.virtioLab.inspector.hide());
      hidden.push(await iops());
      await g.page.evaluate(() => window.virtioLab.inspector.show());
      await g.page.getByTestId('inspector').waitFor();
      shown.push(await iops());
      // The indices lesson's first step: blk tab, avail.idx outlined, a number check waiting.
      await g.page.evaluate(() => window.virtioLab.lessons.open('indices', 1));
      await g.page.getByTestId('lesson-step').waitFor();
      lesson.push(await iops());
      await g.page.evaluate(() => window.virtioLab.lessons.close());
      opts.log(`  round ${round + 1}: hidden ${hidden[round].toFixed(0)} IOPS, shown ${shown[round].toFixed(0)} IOPS, lesson open ${lesson[round].toFixed(0)} IOPS`);
    }
    await g.page.evaluate(() => window.virtioLab.inspector.hide());
    return {
      seconds: opts.seconds,
      rounds: opts.rounds,
      hiddenIops: figure(hidden),
      shownIops: figure(shown),
      ratio: figure(shown.map((s, i) => s / hidden[i])),
      lessonIops: figure(lesson),
      lessonRatio: figure(lesson.map((s, i) => s / hidden[i])),
    };
  } finally {
    await g.close();
  }
}
