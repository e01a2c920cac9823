/**
 * The disk table: the same fio jobs on v86's IDE disk, our virtio-blk on memory and on OPFS,
 * and the raw OPFS floor (no guest), columns interleaved job by job, round by round.
 *
 * Trust: many short rounds rather than few long ones; a sample during which other processes
 * used DISTURBED_CORES or more of the machine is dropped (machine-load.ts) and counted; each
 * ratio is the median of per-round ratios of samples taken side by side, with their spread.
 */
import type { BrowserContext } from '@playwright/test';
import { figure, pairedRatio, type Figure } from '../stats.ts';
import { watchMachineLoad } from './machine-load.ts';
import { DISK_JOBS, fioCommand, warmUpCommand, interruptCount, parseFioTerse, type DiskJob } from './fio.ts';
import { instructionsBetween, labGuest, stockGuest, stockPage, type BenchGuest } from './guests.ts';
import type { DeviceStats } from '../../src/vm/protocol.ts';

export const DISK_COLUMNS = [
  { id: 'ide', label: 'v86 IDE (same bytes, in memory)' },
  { id: 'virtio-mem', label: 'virtio-blk on memory' },
  { id: 'virtio-opfs', label: 'virtio-blk on OPFS' },
  { id: 'raw-opfs', label: 'raw OPFS in the worker' },
] as const;
export type DiskColumnId = (typeof DISK_COLUMNS)[number]['id'];

/** Per request, what each job cost besides its speed. Undefined where it cannot be measured. */
export interface DiskCosts {
  /** Interrupts the guest took on the disk's line (from /proc/interrupts). */
  guestIrqsPerReq?: Figure;
  /** Guest instructions per request (v86's counter; includes fio's own work). */
  instrPerReq?: Figure;
  /** Our device: notifies (kicks), interrupts raised, host ms in device code. */
  kicksPerReq?: Figure;
  devIrqsPerReq?: Figure;
  hostUsPerReq?: Figure;
  /** Parts of hostUsPerReq: inside the medium's calls, in FLUSHes; and work outside requests (timer write-outs). */
  mediumUsPerReq?: Figure;
  flushUsPerReq?: Figure;
  backgroundUsPerReq?: Figure;
}

export interface DiskCell extends DiskCosts {
  value: Figure;
  /** Samples dropped as disturbed (the figures are over the others). */
  dropped: number;
}

/** Other processes' CPU (cores, average over a sample) from which a sample counts as disturbed. */
export const DISTURBED_CORES = 0.5;

/** Per-round ratios of two columns' values (and of host µs per request, OPFS / memory). */
export interface DiskRatios {
  memOverIde?: Figure;
  opfsOverIde?: Figure;
  opfsOverMem?: Figure;
  opfsOverRaw?: Figure;
  hostUsOpfsOverMem?: Figure;
  /** Ratios taken over disturbed rounds too (too few undisturbed ones): marked in the table. */
  overDisturbed?: (keyof DiskRatios)[];
}

export interface DiskResults {
  seconds: number;
  rounds: number;
  diskMiB: number;
  /** Samples dropped as disturbed / taken, over the whole table. */
  dropped: number;
  samples: number;
  /** Median other-process load over all samples, in cores. */
  foreignCores: number;
  rows: { job: DiskJob; cells: Partial<Record<DiskColumnId, DiskCell>>; ratios: DiskRatios }[];
}

/** One fio run's figures; `diskCell` turns a column's samples into its cell. */
export interface Sample {
  value: number;
  /** Other processes' CPU during the sample, in cores; over DISTURBED_CORES: dropped. */
  foreignCores?: number;
  guestIrqsPerReq?: number;
  instrPerReq?: number;
  kicksPerReq?: number;
  devIrqsPerReq?: number;
  hostUsPerReq?: number;
  mediumUsPerReq?: number;
  flushUsPerReq?: number;
  backgroundUsPerReq?: number;
  /** Write-behind: the writer worker's µs per request (its thread), requests that waited for room, FLUSH wait (ms, wall). */
  writerUsPerReq?: number;
  waitsPerReq?: number;
  flushWaitMsPerFlush?: number;
}

export const blkStats = (devices: DeviceStats[]) => devices.find((d) => d.name === 'virtio-blk');

/** One fio job in guest `g` on `device`, with its per-request costs (irqs on `irqLine`, instructions, our device's counters). */
export async function runJob(g: BenchGuest, device: string, irqLine: RegExp, job: DiskJob, seconds: number, sizeMiB: number): Promise<Sample> {
  const before = await g.counters();
  const load = watchMachineLoad();
  const r = await g.run(`cat /proc/interrupts; ${fioCommand(job, device, seconds, sizeMiB)}; cat /proc/interrupts`);
  const foreignCores = load().foreignCores;
  const after = await g.counters();
  if (r.status !== 0) throw new Error(`${g.label}: fio failed (status ${r.status}):\n${r.output.slice(-2000)}`);
  const fio = parseFioTerse(r.output, job);
  const [irqsBefore, irqsAfter] = r.output.split(/^3;.*$/m).map((part) => interruptCount(part, irqLine));
  const per = (x: number) => x / fio.requests;
  const sample: Sample = {
    value: job.metric === 'MBps' ? fio.MBps : fio.iops,
    foreignCores,
    guestIrqsPerReq: per(irqsAfter - irqsBefore),
    instrPerReq: per(instructionsBetween(before.instructions, after.instructions)),
  };
  const a = blkStats(before.devices);
  const b = blkStats(after.devices);
  if (a && b) {
    const requests = b.extra.requests - a.extra.requests;
    sample.kicksPerReq = (b.notifies - a.notifies) / requests;
    sample.devIrqsPerReq = (b.interrupts - a.interrupts) / requests;
    sample.hostUsPerReq = ((b.extra.hostMs - a.extra.hostMs) * 1000) / requests;
    const us = (k: string) => (b.extra[k] !== undefined && a.extra[k] !== undefined ? ((b.extra[k] - a.extra[k]) * 1000) / requests : undefined);
    sample.mediumUsPerReq = us('mediumMs');
    sample.flushUsPerReq = us('flushMs');
    sample.backgroundUsPerReq = us('backgroundMs');
    if (b.extra.writeBehind) {
      sample.writerUsPerReq = us('writerMs');
      sample.waitsPerReq = (b.extra.backendWaits - a.extra.backendWaits) / requests;
      const flushes = b.extra.asyncFlushes - a.extra.asyncFlushes;
      sample.flushWaitMsPerFlush = flushes ? (b.extra.flushWaitMs - a.extra.flushWaitMs) / flushes : 0;
    }
  }
  return sample;
}

export const disturbed = (s: Sample | undefined) => !s || (s.foreignCores ?? 0) >= DISTURBED_CORES;

/**
 * Median (min–max) of each figure over a column's undisturbed samples; if every sample was
 * disturbed, over all of them (the table's dropped count says so).
 */
export function diskCell(all: Sample[]): DiskCell {
  const calm = all.filter((s) => !disturbed(s));
  const ss = calm.length ? calm : all;
  const fig = (k: Exclude<keyof Sample, 'foreignCores'>) => {
    const xs = ss.map((s) => s[k]).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? figure(xs) : undefined;
  };
  return {
    value: fig('value')!,
    dropped: all.length - calm.length,
    guestIrqsPerReq: fig('guestIrqsPerReq'),
    instrPerReq: fig('instrPerReq'),
    kicksPerReq: fig('kicksPerReq'),
    devIrqsPerReq: fig('devIrqsPerReq'),
    hostUsPerReq: fig('hostUsPerReq'),
    mediumUsPerReq: fig('mediumUsPerReq'),
    flushUsPerReq: fig('flushUsPerReq'),
    backgroundUsPerReq: fig('backgroundUsPerReq'),
  };
}

export async function benchDisks(
  ctx: BrowserContext,
  origin: string,
  opts: { seconds: number; rounds: number; diskMiB: number; log: (s: string) => void },
): Promise<DiskResults> {
  const { seconds, rounds, diskMiB, log } = opts;
  const bytes = diskMiB << 20;
  const raw = await stockPage(ctx, origin, 'raw OPFS');
  // The OPFS disk the lab boots from: pre-sized like every lab disk; the guest formats it once.
  await raw.page.evaluate(async (size) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('disks', { create: true });
    const w = await (await dir.getFileHandle('bench-opfs', { create: true })).createWritable();
    await w.truncate(size);
    await w.close();
  }, bytes);

  log(`disk: booting 3 VMs (${diskMiB} MiB disks)`);
  const guests: Record<Exclude<DiskColumnId, 'raw-opfs'>, { g: BenchGuest; device: string; irq: RegExp }> = {
    ide: { g: await stockGuest(ctx, origin, 'v86 IDE', { hdaBytes: bytes }), device: '/dev/sda', irq: /ata_piix/ },
    'virtio-mem': { g: await labGuest(ctx, origin, 'virtio-blk mem', `disk=mem:${diskMiB}&net=none`), device: '/dev/vda', irq: /virtio/ },
    'virtio-opfs': { g: await labGuest(ctx, origin, 'virtio-blk OPFS', 'disk=bench-opfs&net=none'), device: '/dev/vda', irq: /virtio/ },
  };
  try {
    for (const [id, { g, device }] of Object.entries(guests)) {
      if (id !== 'ide') await g.run('umount /mnt/disk 2>/dev/null; true');
      // Warm-up: one read of the whole disk (the OPFS disk's read cache then holds it), then
      // every job once for 1 s: fio's pages and v86's JIT for each I/O path, which otherwise
      // made the first rounds of the write and qd32 jobs outliers.
      const warm = await g.run(warmUpCommand(device, diskMiB));
      if (warm.status !== 0) throw new Error(`${g.label}: warm-up read failed:\n${warm.output.slice(-2000)}`);
      for (const job of DISK_JOBS) await runJob(g, device, /x/, job, 1, diskMiB);
    }
    // samples[job/column][round]
    const samples = new Map<string, Sample[]>();
    const push = (job: DiskJob, col: DiskColumnId, s: Sample) => {
      const k = `${job.id}/${col}`;
      samples.set(k, [...(samples.get(k) ?? []), s]);
    };
    for (let round = 0; round < rounds; round++) {
      for (const job of DISK_JOBS) {
        for (const [id, { g, device, irq }] of Object.entries(guests)) {
          const s = await runJob(g, device, irq, job, seconds, diskMiB);
          push(job, id as DiskColumnId, s);
          const host = s.hostUsPerReq === undefined ? '' : `, host µs/req ${s.hostUsPerReq.toFixed(1)} (medium ${s.mediumUsPerReq?.toFixed(1)}, flush ${s.flushUsPerReq?.toFixed(1)}, +background ${s.backgroundUsPerReq?.toFixed(1)}${s.writerUsPerReq === undefined ? '' : `; writer ${s.writerUsPerReq.toFixed(1)} µs/req, waits ${s.waitsPerReq?.toFixed(2)}/req, FLUSH wait ${s.flushWaitMsPerFlush?.toFixed(1)} ms`})`;
          log(`  round ${round + 1} ${job.id} ${id}: ${s.value.toFixed(job.metric === 'IOPS' ? 0 : 1)} ${job.metric}${host}, others ${s.foreignCores?.toFixed(2)} cores${disturbed(s) ? ' (disturbed)' : ''}`);
        }
        // A synchronous API has no queue depth: the qd32 rows repeat the qd1 pattern.
        const load = watchMachineLoad();
        const r = await raw.page.evaluate((j) => window.stock.rawOpfs(j), { rw: job.rw, bs: job.bs, seconds, fileBytes: bytes });
        const s: Sample = { value: job.metric === 'MBps' ? (r.mibps * 1048576) / 1e6 : r.iops, foreignCores: load().foreignCores };
        push(job, 'raw-opfs', s);
        log(`  round ${round + 1} ${job.id} raw-opfs: ${s.value.toFixed(0)} ${job.metric}, others ${s.foreignCores?.toFixed(2)} cores${disturbed(s) ? ' (disturbed)' : ''}`);
      }
    }
    const rows = DISK_JOBS.map((job) => {
      const cells: Partial<Record<DiskColumnId, DiskCell>> = {};
      for (const { id } of DISK_COLUMNS) {
        const ss = samples.get(`${job.id}/${id}`) ?? [];
        if (ss.length === 0) continue;
        cells[id] = diskCell(ss);
      }
      return { job, cells, ratios: diskRatios((col) => samples.get(`${job.id}/${col}`) ?? []) };
    });
    const all = [...samples.values()].flat();
    return {
      seconds,
      rounds,
      diskMiB,
      dropped: all.filter(disturbed).length,
      samples: all.length,
      foreignCores: figure(all.map((s) => s.foreignCores ?? 0)).median,
      rows,
    };
  } finally {
    for (const { g } of Object.values(guests)) await g.close();
    await raw.page.close();
  }
}

/**
 * Per-round ratios between columns, over rounds where neither sample was disturbed; when
 * fewer than two such rounds remain, over every round (listed in `overDisturbed`).
 */
export function diskRatios(column: (id: DiskColumnId) => Sample[]): DiskRatios {
  const overDisturbed: (keyof DiskRatios)[] = [];
  const ratio = (name: Exclude<keyof DiskRatios, 'overDisturbed'>, a: DiskColumnId, b: DiskColumnId, k: 'value' | 'hostUsPerReq' = 'value') => {
    const calm = (id: DiskColumnId) => column(id).map((s) => (disturbed(s) ? undefined : s[k]));
    const r = pairedRatio(calm(a), calm(b));
    if (r && r.runs.length >= 2) return r;
    const all = pairedRatio(column(a).map((s) => s[k]), column(b).map((s) => s[k]));
    if (all) overDisturbed.push(name);
    return all ?? r;
  };
  const out: DiskRatios = {
    memOverIde: ratio('memOverIde', 'virtio-mem', 'ide'),
    opfsOverIde: ratio('opfsOverIde', 'virtio-opfs', 'ide'),
    opfsOverMem: ratio('opfsOverMem', 'virtio-opfs', 'virtio-mem'),
    opfsOverRaw: ratio('opfsOverRaw', 'virtio-opfs', 'raw-opfs'),
    hostUsOpfsOverMem: ratio('hostUsOpfsOverMem', 'virtio-opfs', 'virtio-mem', 'hostUsPerReq'),
  };
  if (overDisturbed.length) out.overDisturbed = overDisturbed;
  return out;
}
