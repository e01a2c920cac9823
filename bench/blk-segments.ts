/**
 * `node --import tsx bench/blk-segments.ts [--rounds 5] [--seconds 3]`: does a 1 MiB
 * sequential read cost the guest more with size_max 64 KiB × seg_max 254 (the default) than
 * with size_max 1 MiB × seg_max 16? Both keep seg_max × size_max ≤ the 16 MiB request cap.
 * Two Node VMs on memory disks, fio O_DIRECT qd1 alternating between them round by round;
 * per request: guest instructions (v86's counter: independent of how busy the machine is),
 * descriptors' worth of host time in our device, and MB/s for context. Numbers, not assertions.
 */
import os from 'node:os';
import { MemoryBlockBackend } from '../src/backends/memory-block-backend.ts';
import { startNodeVm, type NodeVm } from '../src/vm/node/node-machine.ts';
import type { BlkLimits } from '../src/devices/blk/config.ts';
import { figure, pairedRatio, ratioCell, cell } from './stats.ts';
import { DISK_JOBS, fioCommand, parseFioTerse } from './suite/fio.ts';
import { instructionsBetween } from './suite/guests.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const rounds = arg('rounds', 5);
const seconds = arg('seconds', 3);
const DISK_MIB = 64;

const VARIANTS: { id: string; limits: Partial<BlkLimits> }[] = [
  { id: '64K×254', limits: { sizeMax: 64 << 10, segMax: 254 } },
  { id: '1M×16', limits: { sizeMax: 1 << 20, segMax: 16 } },
];
const JOBS = DISK_JOBS.filter((j) => j.id === 'seq-read' || j.id === 'seq-write');

const vms: NodeVm[] = [];
try {
  for (const v of VARIANTS) {
    const vm = await startNodeVm({ disk: { backend: new MemoryBlockBackend(DISK_MIB << 20), name: 'seg', limits: v.limits } });
    await vm.session.ready;
    await vm.session.run('umount /mnt/disk 2>/dev/null; true');
    await vm.session.run(fioCommand(JOBS[0], '/dev/vda', 1, DISK_MIB), { timeoutMs: 300_000 }); // warm-up
    vms.push(vm);
  }
  console.log(`load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${rounds} rounds × ${seconds} s, alternating`);
  for (const job of JOBS) {
    const instr: number[][] = VARIANTS.map(() => []);
    const mbps: number[][] = VARIANTS.map(() => []);
    const hostUs: number[][] = VARIANTS.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (let v = 0; v < VARIANTS.length; v++) {
        const vm = vms[v];
        const blk = () => vm.machine.deviceStats().find((d) => d.name === 'virtio-blk')!;
        const i0 = vm.machine.instructions();
        const a = blk();
        const r = await vm.session.run(fioCommand(job, '/dev/vda', seconds, DISK_MIB), { timeoutMs: 300_000 });
        const b = blk();
        const fio = parseFioTerse(r.output, job);
        instr[v].push(instructionsBetween(i0, vm.machine.instructions()) / fio.requests);
        mbps[v].push(fio.MBps);
        hostUs[v].push(((b.extra.hostMs - a.extra.hostMs) * 1000) / (b.extra.requests - a.extra.requests));
      }
    }
    console.log(`\n${job.label}`);
    for (let v = 0; v < VARIANTS.length; v++) {
      console.log(
        `  ${VARIANTS[v].id.padEnd(8)} guest kinstr/req ${cell(figure(instr[v].map((x) => x / 1000)), 0)}, ` +
          `device host µs/req ${cell(figure(hostUs[v]), 0)}, MB/s ${cell(figure(mbps[v]), 0)}`,
      );
    }
    console.log(
      `  ${VARIANTS[1].id} / ${VARIANTS[0].id}: guest instructions ${ratioCell(pairedRatio(instr[1], instr[0]))}, ` +
        `host µs ${ratioCell(pairedRatio(hostUs[1], hostUs[0]))}, MB/s ${ratioCell(pairedRatio(mbps[1], mbps[0]))}`,
    );
  }
} finally {
  for (const vm of vms) await vm.stop();
}
process.exit(0);
