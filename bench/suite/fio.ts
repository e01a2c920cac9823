/**
 * The disk jobs of `npm run bench`: one fio job line for every column (only the device path
 * differs), libaio, O_DIRECT, time-based, and the parse of fio's terse output.
 */
export interface DiskJob {
  id: string;
  label: string;
  rw: 'read' | 'write' | 'randread' | 'randwrite';
  /** Bytes per request. */
  bs: number;
  iodepth: number;
  /** What the table shows: MB/s for sequential jobs, IOPS for random ones. */
  metric: 'MBps' | 'IOPS';
}

export const DISK_JOBS: DiskJob[] = [
  { id: 'seq-read', label: 'seq-read 1 MiB, qd1 (MB/s)', rw: 'read', bs: 1 << 20, iodepth: 1, metric: 'MBps' },
  { id: 'seq-write', label: 'seq-write 1 MiB, qd1 (MB/s)', rw: 'write', bs: 1 << 20, iodepth: 1, metric: 'MBps' },
  { id: 'rnd-read-1', label: 'rnd-read 4 KiB, qd1 (IOPS)', rw: 'randread', bs: 4096, iodepth: 1, metric: 'IOPS' },
  { id: 'rnd-write-1', label: 'rnd-write 4 KiB, qd1 (IOPS)', rw: 'randwrite', bs: 4096, iodepth: 1, metric: 'IOPS' },
  { id: 'rnd-read-32', label: 'rnd-read 4 KiB, qd32 (IOPS)', rw: 'randread', bs: 4096, iodepth: 32, metric: 'IOPS' },
  { id: 'rnd-write-32', label: 'rnd-write 4 KiB, qd32 (IOPS)', rw: 'randwrite', bs: 4096, iodepth: 32, metric: 'IOPS' },
];

/**
 * Write jobs end with an fsync (a FLUSH), inside fio's runtime: a disk with a write-back
 * cache (ours on OPFS) then pays for writing its cache out within the job that filled it,
 * not in whatever runs next.
 */
export function fioCommand(job: DiskJob, device: string, seconds: number, sizeMiB: number): string {
  return (
    `fio --name=bench --filename=${device} --ioengine=libaio --direct=1 --time_based --runtime=${seconds} ` +
    (job.rw.includes('write') ? '--end_fsync=1 ' : '') +
    `--size=${sizeMiB}m --rw=${job.rw} --bs=${job.bs} --iodepth=${job.iodepth} --norandommap --randrepeat=0 ` +
    `--output-format=terse --terse-version=3`
  );
}

/** One sequential direct read of the whole disk in 1 MiB requests (the table's warm-up). */
export function warmUpCommand(device: string, sizeMiB: number): string {
  return `fio --name=warm --filename=${device} --ioengine=libaio --direct=1 --size=${sizeMiB}m --rw=read --bs=1m --iodepth=1 --output-format=terse --terse-version=3 >/dev/null`;
}

/** fio --terse-version=3: 0-based fields of the read and write groups (KiB moved, IOPS). */
const TERSE = { read: { kib: 5, iops: 7, runtimeMs: 8 }, write: { kib: 46, iops: 48, runtimeMs: 49 } };

export interface FioResult {
  requests: number;
  iops: number;
  /** Decimal megabytes per second, as fio and the vhost-blk tables report. */
  MBps: number;
}

export function parseFioTerse(output: string, job: DiskJob): FioResult {
  const line = output.split('\n').find((l) => l.startsWith('3;'));
  if (!line) throw new Error(`fio printed no terse line:\n${output.slice(-2000)}`);
  const f = line.split(';');
  const g = job.rw.includes('read') ? TERSE.read : TERSE.write;
  const kib = Number(f[g.kib]);
  const seconds = Number(f[g.runtimeMs]) / 1000;
  const requests = Math.round((kib * 1024) / job.bs);
  if (!(requests > 0 && seconds > 0)) throw new Error(`fio moved nothing: ${line}`);
  return { requests, iops: requests / seconds, MBps: (kib * 1024) / seconds / 1e6 };
}

/** Total interrupts on the /proc/interrupts lines whose names match (a line: "11:  1234  XT-PIC  virtio0, …"). */
export function interruptCount(procInterrupts: string, name: RegExp): number {
  let total = 0;
  for (const line of procInterrupts.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\s/.exec(line);
    if (m && name.test(line)) total += Number(m[1]);
  }
  return total;
}
