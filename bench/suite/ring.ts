/**
 * Split vs packed virtqueues (§2.7 vs §2.8) on the same guest image, devices and workload:
 * two lab VMs, one booted with ?ring=split and one with ?ring=packed, each with a memory disk
 * and a NIC; fio's 4 KiB random jobs and TCP both ways alternate between them job by job,
 * round by round (the order flips every round), so drift on a shared machine hits both.
 */
import type { BrowserContext } from '@playwright/test';
import { cell, type Figure } from '../stats.ts';
import { diskCell, runJob, type DiskCell, type Sample } from './blk.ts';
import { DISK_JOBS, type DiskJob } from './fio.ts';
import { labGuest, type BenchGuest } from './guests.ts';
import { GATEWAY, transferBothWays, TransferSamples, waitLease, type TransferResult } from './net.ts';
import { httpSource } from './net-modes.ts';
import { tcpEndpoint } from './tcp-endpoint.ts';
import type { RingLayout } from '../../src/virtio/queue/virtqueue.ts';

export const LAYOUTS: readonly RingLayout[] = ['split', 'packed'];
/** The rows: 4 KiB random read and write at depth 1 and 32. */
export const RING_JOBS: DiskJob[] = DISK_JOBS.filter((j) => j.bs === 4096);
/** VIRTIO_F_RING_PACKED: the guest's /sys/bus/virtio/devices/N/features has it as character 34. */
const PACKED_BIT = 34;

export type RingNet = TransferResult;

export interface RingResults {
  seconds: number;
  rounds: number;
  diskMiB: number;
  mib: number;
  /** Per layout: the guest's feature strings of every virtio device, as negotiated. */
  features: Record<RingLayout, string[]>;
  blk: { job: DiskJob; cells: Record<RingLayout, DiskCell> }[];
  net: Record<RingLayout, RingNet>;
}

/** The guest's negotiated features, one bit string per device; throws unless bit 34 matches the layout. */
async function negotiated(g: BenchGuest, layout: RingLayout): Promise<string[]> {
  const r = await g.run('cat /sys/bus/virtio/devices/*/features');
  const lines = r.output.split('\n').map((l) => l.trim()).filter((l) => /^[01]{64}$/.test(l));
  if (lines.length === 0) throw new Error(`${g.label}: no virtio feature strings:\n${r.output}`);
  const want = layout === 'packed' ? '1' : '0';
  if (!lines.every((l) => l[PACKED_BIT] === want)) {
    throw new Error(`${g.label}: VIRTIO_F_RING_PACKED (bit ${PACKED_BIT}) not ${layout === 'packed' ? 'negotiated' : 'off'} on every device:\n${lines.join('\n')}`);
  }
  return lines;
}

const order = (round: number) => (round % 2 === 0 ? LAYOUTS : [...LAYOUTS].reverse());

export async function benchRing(
  ctx: BrowserContext,
  origin: string,
  relayUrl: (room: string) => string,
  opts: { seconds: number; rounds: number; diskMiB: number; mib: number; log: (s: string) => void },
): Promise<RingResults> {
  const { seconds, rounds, diskMiB, mib, log } = opts;
  const bytes = mib << 20;
  log(`ring: booting split and packed VMs (${diskMiB} MiB memory disks, NIC on the relay)`);
  const guests = {} as Record<RingLayout, BenchGuest>;
  const source = httpSource(bytes);
  const sink = tcpEndpoint('sink', bytes);
  try {
    for (const layout of LAYOUTS) {
      guests[layout] = await labGuest(ctx, origin, `ring ${layout}`, `disk=mem:${diskMiB}&room=bench-ring-${layout}&ring=${layout}`);
    }
    const features = {} as Record<RingLayout, string[]>;
    for (const layout of LAYOUTS) {
      const g = guests[layout];
      features[layout] = await negotiated(g, layout);
      await g.run('umount /mnt/disk 2>/dev/null; true');
      await waitLease(g);
      await runJob(g, '/dev/vda', /x/, RING_JOBS[0]!, 1, diskMiB); // warm-up: fio's pages, the JIT
      await g.run(`ping -c 3 ${GATEWAY}`, 60_000);
    }

    const blk = new Map<string, Sample[]>();
    const net = Object.fromEntries(LAYOUTS.map((l) => [l, new TransferSamples()])) as Record<RingLayout, TransferSamples>;
    for (let round = 0; round < rounds; round++) {
      for (const job of RING_JOBS) {
        for (const layout of order(round)) {
          const s = await runJob(guests[layout], '/dev/vda', /virtio/, job, seconds, diskMiB);
          const k = `${job.id}/${layout}`;
          blk.set(k, [...(blk.get(k) ?? []), s]);
          log(`  round ${round + 1} ${job.id} ${layout}: ${s.value.toFixed(0)} IOPS, ${((s.instrPerReq ?? 0) / 1000).toFixed(0)} kinstr/req`);
        }
      }
      for (const layout of order(round)) {
        const t = await transferBothWays(guests[layout], source, sink, mib);
        net[layout].add(t);
        log(`  round ${round + 1} net ${layout}: down ${t.downMiBps.toFixed(2)} MiB/s, up ${t.upMiBps.toFixed(2)} MiB/s`);
      }
    }
    const results: RingResults = {
      seconds,
      rounds,
      diskMiB,
      mib,
      features,
      blk: RING_JOBS.map((job) => ({
        job,
        cells: Object.fromEntries(LAYOUTS.map((l) => [l, diskCell(blk.get(`${job.id}/${l}`) ?? [])])) as Record<RingLayout, DiskCell>,
      })),
      net: {} as Record<RingLayout, RingNet>,
    };
    for (const layout of LAYOUTS) results.net[layout] = net[layout].result();
    return results;
  } finally {
    for (const g of Object.values(guests)) await g.close();
    source.server.close();
    sink.server.close();
  }
}

/** packed / split of the medians, e.g. "1.04×". */
const ratio = (packed: Figure | undefined, split: Figure | undefined) =>
  packed && split && split.median > 0 ? `${(packed.median / split.median).toFixed(2)}×` : '–';
const row = (cells: string[]) => `| ${cells.join(' | ')} |`;

/** The markdown section `npm run bench` appends for the ring part. */
export function ringSection(r: RingResults): string[] {
  const out: string[] = [];
  out.push('### Split vs packed virtqueues', '');
  out.push(
    `The same lab VM booted twice, \`?ring=split\` and \`?ring=packed\` (VIRTIO_F_RING_PACKED checked in the guest's ` +
      `/sys/bus/virtio/devices/*/features), interleaved job by job. fio on a ${r.diskMiB} MiB memory disk (/dev/vda, ` +
      `${r.seconds} s per job); TCP through the relay's NAT (busybox wget down, fio's net engine up, as in the network table), ${r.mib} MiB each way. ` +
      `Median of ${r.rounds} round(s), (min–max); per-request costs are medians; the last column is packed / split.`,
    '',
  );
  out.push(row(['', 'split', 'packed', 'packed / split']));
  out.push(row(['---', '---', '---', '---']));
  const d = (f: Figure | undefined, digits: number, scale = 1) =>
    cell(f && { median: f.median / scale, min: f.min / scale, max: f.max / scale, runs: f.runs.map((x) => x / scale) }, digits);
  for (const { job, cells } of r.blk) {
    const { split, packed } = cells;
    const name = job.label.replace(/ \(IOPS\)/, '');
    out.push(row([`${name} (IOPS)`, d(split.value, 0), d(packed.value, 0), ratio(packed.value, split.value)]));
    out.push(row([`  guest kinstr / request`, d(split.instrPerReq, 1, 1000), d(packed.instrPerReq, 1, 1000), ratio(packed.instrPerReq, split.instrPerReq)]));
    out.push(row([`  kicks / request`, d(split.kicksPerReq, 3), d(packed.kicksPerReq, 3), ratio(packed.kicksPerReq, split.kicksPerReq)]));
    out.push(row([`  interrupts / request`, d(split.devIrqsPerReq, 3), d(packed.devIrqsPerReq, 3), ratio(packed.devIrqsPerReq, split.devIrqsPerReq)]));
    out.push(row([`  host µs / request (device code)`, d(split.hostUsPerReq, 1), d(packed.hostUsPerReq, 1), ratio(packed.hostUsPerReq, split.hostUsPerReq)]));
  }
  const { split: ns, packed: np } = r.net;
  out.push(row(['net host → guest (MiB/s)', d(ns.downMiBps, 2), d(np.downMiBps, 2), ratio(np.downMiBps, ns.downMiBps)]));
  out.push(row(['net guest → host (MiB/s)', d(ns.upMiBps, 2), d(np.upMiBps, 2), ratio(np.upMiBps, ns.upMiBps)]));
  out.push(row(['  guest Minstr / MiB down', d(ns.downInstrPerMiB, 2, 1e6), d(np.downInstrPerMiB, 2, 1e6), ratio(np.downInstrPerMiB, ns.downInstrPerMiB)]));
  out.push(row(['  guest Minstr / MiB up', d(ns.upInstrPerMiB, 2, 1e6), d(np.upInstrPerMiB, 2, 1e6), ratio(np.upInstrPerMiB, ns.upInstrPerMiB)]));
  out.push(row(['  kicks / frame', d(ns.kicksPerFrame, 3), d(np.kicksPerFrame, 3), ratio(np.kicksPerFrame, ns.kicksPerFrame)]));
  out.push(row(['  interrupts / frame', d(ns.irqsPerFrame, 3), d(np.irqsPerFrame, 3), ratio(np.irqsPerFrame, ns.irqsPerFrame)]));
  out.push(row(['  host µs / frame (device code)', d(ns.hostUsPerFrame, 1), d(np.hostUsPerFrame, 1), ratio(np.hostUsPerFrame, ns.hostUsPerFrame)]));
  return out;
}
