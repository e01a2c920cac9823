/**
 * What the ring inspector costs the guest: fio 4 KiB random-read IOPS (psync, qd1) on a
 * memory disk with the panel hidden vs shown, alternating so drift hits both.
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
    for (let round = 0; round < opts.rounds; round++) {
      await g.page.evaluate(() => window.virtioLab.inspector.hide());
      hidden.push(await iops());
      await g.page.evaluate(() => window.virtioLab.inspector.show());
      await g.page.getByTestId('inspector').waitFor();
      shown.push(await iops());
      opts.log(`  round ${round + 1}: hidden ${hidden[round].toFixed(0)} IOPS, shown ${shown[round].toFixed(0)} IOPS`);
    }
    await g.page.evaluate(() => window.virtioLab.inspector.hide());
    return { seconds: opts.seconds, rounds: opts.rounds, hiddenIops: figure(hidden), shownIops: figure(shown), ratio: figure(shown.map((s, i) => s / hidden[i])) };
  } finally {
    await g.close();
  }
}
