/**
 * `npm run bench:blk`: fio inside the guest against /dev/vda (our virtio-blk over a raw image
 * file in os.tmpdir()), O_DIRECT, 1 MiB sequential and 4 KiB random, read and write, at
 * queue depth 1 (psync) and 32 (libaio). Per job it prints fio's throughput and IOPS and,
 * from the function's counters, notifies (kicks), interrupts and the device's own host time
 * per request. `--quick`: smaller jobs. Numbers, not assertions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNodeVm, type NodeVm } from '../src/vm/node/node-machine.ts';
import type { DeviceStats } from '../src/vm/protocol.ts';

const quick = process.argv.includes('--quick');
const SEQ_SIZE = quick ? '16m' : '48m';
const RAND_SIZE = quick ? '4m' : '16m';

interface Job {
  name: string;
  rw: 'read' | 'write' | 'randread' | 'randwrite';
  bs: string;
  depth: 1 | 32;
  size: string;
  extra?: string;
}

const jobs: Job[] = [];
for (const depth of [1, 32] as const) {
  jobs.push({ name: 'seq write 1M', rw: 'write', bs: '1m', depth, size: SEQ_SIZE });
  jobs.push({ name: 'seq read 1M', rw: 'read', bs: '1m', depth, size: SEQ_SIZE });
  jobs.push({ name: 'rand write 4k', rw: 'randwrite', bs: '4k', depth, size: RAND_SIZE });
  jobs.push({ name: 'rand read 4k', rw: 'randread', bs: '4k', depth, size: RAND_SIZE });
}
// Does handing the driver 32 I/Os per io_submit let requests share kicks and interrupts?
jobs.push({ name: 'rand read 4k, submit×32', rw: 'randread', bs: '4k', depth: 32, size: RAND_SIZE, extra: '--iodepth_batch_submit=32 --iodepth_batch_complete_min=1' });

/** fio --terse-version=3: 0-based field indices of the read and write groups' KiB, KiB/s, IOPS. */
const TERSE = { read: { kib: 5, bw: 6, iops: 7 }, write: { kib: 46, bw: 47, iops: 48 } };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-bench-blk-'));
const blk = (vm: NodeVm) => vm.machine.deviceStats().find((d) => d.name === 'virtio-blk') as DeviceStats;

/**
 * Two ways to serve a kick, side by side: "inline" inside the notify write, "deferred" at the
 * end of v86's time slice with kicks suppressed meanwhile (the lab's default).
 */
const MODES = ['inline', 'deferred'] as const;
type Mode = (typeof MODES)[number];

async function bootVm(mode: Mode): Promise<NodeVm> {
  const image = path.join(dir, `${mode}.img`);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 64 << 20);
  const vm = await startNodeVm({ disk: { path: image }, devices: { serveKicksInline: mode === 'inline' } });
  await vm.session.ready;
  await vm.session.run('umount /mnt/disk');
  // Fill the disk once so reads return data the device really reads.
  await vm.session.run('dd if=/dev/zero of=/dev/vda bs=1M count=64 oflag=direct 2>/dev/null', { timeoutMs: 300_000 });
  return vm;
}

const vms = {} as Record<Mode, NodeVm>;
try {
  // Both VMs stay up; jobs alternate between them (the idle one sleeps), so drift hits both.
  for (const mode of MODES) vms[mode] = await bootVm(mode);
  console.log(`virtio-blk fio benchmark: ${os.cpus().length} cores, Node ${process.version}, 64 MiB raw image per VM, O_DIRECT`);
  const header = ['job', 'qd', 'engine', 'serve', 'MiB/s', 'IOPS', 'requests', 'notifies/req', 'irqs/req', 'host µs/req', 'wall s'];
  const rows: string[][] = [];
  const iops: Record<Mode, number[]> = { inline: [], deferred: [] };
  for (const job of jobs) {
    for (const mode of MODES) {
      const vm = vms[mode];
      const engine = job.depth === 1 ? 'psync' : 'libaio';
      const cmd =
        `fio --name=b --filename=/dev/vda --direct=1 --rw=${job.rw} --bs=${job.bs} --size=${job.size} ` +
        `--ioengine=${engine} --iodepth=${job.depth} ${job.extra ?? ''} --output-format=terse --terse-version=3`;
      const a = blk(vm);
      const t0 = performance.now();
      const r = await vm.session.run(cmd, { timeoutMs: 600_000 });
      const wall = (performance.now() - t0) / 1000;
      const b = blk(vm);
      const line = r.output.split('\n').find((l) => l.startsWith('3;'));
      if (r.status !== 0 || !line) throw new Error(`fio failed: ${r.output}`);
      const f = line.split(';');
      const group = job.rw.includes('read') ? TERSE.read : TERSE.write;
      const requests = b.extra.requests - a.extra.requests;
      const per = (x: number) => (x / requests).toFixed(2);
      iops[mode].push(Number(f[group.iops]));
      rows.push([
        job.name,
        String(job.depth),
        engine,
        mode,
        (Number(f[group.bw]) / 1024).toFixed(1),
        Number(f[group.iops]).toFixed(0),
        String(requests),
        per(b.notifies - a.notifies),
        per(b.interrupts - a.interrupts),
        (((b.extra.hostMs - a.extra.hostMs) * 1000) / requests).toFixed(1),
        wall.toFixed(1),
      ]);
      console.log(rows[rows.length - 1].join('  '));
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ');
  console.log('');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(fmt(r));
  console.log('');
  console.log('IOPS ratio deferred/inline per job: ' + jobs.map((j, i) => `${j.name} qd${j.depth} ${(iops.deferred[i] / iops.inline[i]).toFixed(2)}×`).join(', '));
  for (const mode of MODES) {
    const vm = vms[mode];
    if (vm.deviceErrors.length || vm.diskErrors.length) console.log(`${mode} errors:`, vm.deviceErrors, vm.diskErrors);
  }
} finally {
  for (const vm of Object.values(vms)) await vm.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
