/** Renders `npm run bench`'s results as the markdown the README's Performance section carries. */
import { cell, pairedRatio, ratioCell, type Figure } from '../stats.ts';
import { DISK_COLUMNS, DISTURBED_CORES, type DiskResults } from './blk.ts';
import { NC_NICS, NICS, type NetResults } from './net.ts';
import { MODES, type ModeResults } from './net-modes.ts';
import type { InspectorResults } from './inspector.ts';

export interface Machine {
  date: string;
  cores: number;
  cpu: string;
  memGiB: number;
  os: string;
  node: string;
  chromium: string;
  v86: string;
  guestKernel: string;
  quick: boolean;
}

export interface BenchResults {
  machine: Machine;
  disk?: DiskResults;
  net?: NetResults;
  boot?: { runs: number; ms: Figure; imageMs: Figure; longestTaskMs: Figure };
  /** Page load → prompt: return visits restored vs cold in the same run, the first visit, the boot state. */
  instant?: {
    rounds: number;
    firstMs: Figure;
    restoredMs: Figure;
    coldMs: Figure;
    restoreWorkerMs: Figure;
    stateBytes: Figure;
    pauseMs: Figure;
    storeMs: Figure;
    /** Restored visits with a NIC on the relay: page load → prompt, prompt → lease, prompt → first ping answered. */
    network?: { promptMs: Figure; leaseMs: Figure; pingMs: Figure };
  };
  inspector?: InspectorResults;
}

const ratio = (a: Figure | undefined, b: Figure | undefined) => (a && b && b.median > 0 ? `${(a.median / b.median).toFixed(2)}×` : '–');
const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const rule = (n: number) => row(Array.from({ length: n }, () => '---'));

/** What the ± beside a ratio is (stats.ts spreadPct). */
const SPREAD_WORDS = 'half the width of their median’s 95 % confidence interval (order statistics; with fewer than 9 rounds, half their range)';

function diskSection(d: DiskResults): string[] {
  const out: string[] = [];
  out.push(`### Disk`);
  out.push('');
  out.push(
    `fio inside the guest, the same job line for every column (libaio, O_DIRECT, time-based ${d.seconds} s, ${d.diskMiB} MiB zeroed disk; ` +
      `/dev/sda for IDE, /dev/vda for virtio-blk). The raw OPFS column is the same access pattern on a SyncAccessHandle with no guest; ` +
      `a synchronous API has no queue, so its qd32 rows repeat qd1. Every column first reads its whole disk once (the OPFS disk's read cache ` +
      `then holds it: the table is warm) and runs every job once for 1 s (v86's JIT). ${d.rounds} rounds, columns interleaved in each; values are the median (min–max) ` +
      `of the undisturbed rounds, ratios the median of per-round ratios ± ${SPREAD_WORDS}. ` +
      `A sample during which other processes used ≥ ${DISTURBED_CORES} cores was dropped: ${d.dropped ?? 0} of ${d.samples ?? 0} ` +
      `(other processes' median load during the samples: ${(d.foreignCores ?? 0).toFixed(2)} cores). ` +
      `A cell whose every sample was disturbed is over all of them, and a ratio with fewer than two undisturbed rounds ` +
      `is over every round, marked ⚠: read those as the machine's, not the disk's.`,
  );
  out.push('');
  out.push(row(['', ...DISK_COLUMNS.map((c) => c.label), 'virtio mem / IDE', 'virtio OPFS / IDE', 'virtio OPFS / mem', 'virtio OPFS / raw OPFS']));
  out.push(rule(DISK_COLUMNS.length + 5));
  for (const { job, cells, ratios } of d.rows) {
    const digits = job.metric === 'MBps' ? 1 : 0;
    out.push(
      row([
        job.label,
        ...DISK_COLUMNS.map((c) => cell(cells[c.id]?.value, digits) + (cells[c.id]?.dropped ? ` [${cells[c.id]!.dropped} dropped]` : '')),
        ...(['memOverIde', 'opfsOverIde', 'opfsOverMem', 'opfsOverRaw'] as const).map(
          (k) => ratioCell(ratios?.[k]) + (ratios?.overDisturbed?.includes(k) ? ' ⚠' : ''),
        ),
      ]),
    );
  }
  out.push('');
  out.push('Per request (medians): guest interrupts on the disk\'s line, guest instructions (thousands, fio\'s own included), and for our device its kicks, interrupts and host time in device code.');
  out.push('');
  out.push(row(['', 'IDE irqs', 'IDE kinstr', 'mem irqs', 'mem kinstr', 'mem kicks', 'mem µs', 'OPFS irqs', 'OPFS kinstr', 'OPFS kicks', 'OPFS µs', 'OPFS µs / mem µs']));
  out.push(rule(12));
  const m = (f: Figure | undefined, digits: number, scale = 1) => (f ? (f.median / scale).toFixed(digits) : '–');
  for (const { job, cells, ratios } of d.rows) {
    const { ide, 'virtio-mem': mem, 'virtio-opfs': opfs } = cells;
    out.push(
      row([
        job.label.replace(/ \((MB\/s|IOPS)\)/, ''),
        m(ide?.guestIrqsPerReq, 2),
        m(ide?.instrPerReq, 0, 1000),
        m(mem?.guestIrqsPerReq, 2),
        m(mem?.instrPerReq, 0, 1000),
        m(mem?.kicksPerReq, 2),
        m(mem?.hostUsPerReq, 1),
        m(opfs?.guestIrqsPerReq, 2),
        m(opfs?.instrPerReq, 0, 1000),
        m(opfs?.kicksPerReq, 2),
        m(opfs?.hostUsPerReq, 1),
        ratioCell(ratios?.hostUsOpfsOverMem) + (ratios?.overDisturbed?.includes('hostUsOpfsOverMem') ? ' ⚠' : ''),
      ]),
    );
  }
  return out;
}

function netSection(n: NetResults): string[] {
  const out: string[] = [];
  out.push('### Network');
  out.push('');
  out.push(
    `Each NIC on the same relay (loopback): ping to the gateway 10.0.2.2 (median of ${n.pings} per round), TCP through its NAT, ` +
      `${n.mib} MiB each way: host → guest with busybox wget from an HTTP server on loopback into /dev/null, guest → host with ` +
      `fio's net engine (64 KiB writes) into a sink; both move data in large calls, so instructions per MiB are the NIC's and TCP's, ` +
      `not the program's (fio's own start, 10–20 M instructions measured alone, is in the up column: ` +
      `${(10 / n.mib).toFixed(1)}–${(20 / n.mib).toFixed(1)} M per MiB at ${n.mib} MiB). Median of ${n.rounds} round(s), (min–max).`,
  );
  out.push('');
  out.push(row(['NIC', 'ping RTT (ms)', 'host → guest (MiB/s)', 'guest → host (MiB/s)', 'guest Minstr/MiB down', 'up', 'kicks/frame', 'irqs/frame', 'host µs/frame']));
  out.push(rule(9));
  out.push(row(['raw WebSocket → gateway (floor)', cell(n.rawWsMs, 3), '–', '–', '–', '–', '–', '–', '–']));
  const m = (f: Figure | undefined, digits: number, scale = 1) => (f ? (f.median / scale).toFixed(digits) : '–');
  for (const { id, label } of NICS) {
    const r = n.nics[id];
    out.push(
      row([
        label,
        cell(r.pingMs, 2),
        cell(r.downMiBps, 2),
        cell(r.upMiBps, 2),
        m(r.downInstrPerMiB, 1, 1e6),
        m(r.upInstrPerMiB, 1, 1e6),
        m(r.kicksPerFrame, 2),
        m(r.irqsPerFrame, 2),
        m(r.hostUsPerFrame, 1) + (r.hookUsPerFrame ? ` (+${m(r.hookUsPerFrame, 1)} link, capture; ${m(r.hostPercent, 1)} % of wall)` : ''),
      ]),
    );
  }
  out.push('');
  const ours = n.nics.ours;
  // Round by round: both NICs ran in every round, so the ratio's spread is its own.
  const paired = (a: Figure | undefined, b: Figure | undefined) => ratioCell(a && b ? pairedRatio(a.runs, b.runs) : undefined);
  for (const { id, label } of NICS.slice(1)) {
    const s = n.nics[id];
    out.push(
      `- ours / ${label}: ping ${ratio(ours.pingMs, s.pingMs)} the RTT; throughput host → guest ${paired(ours.downMiBps, s.downMiBps)}, ` +
        `guest → host ${paired(ours.upMiBps, s.upMiBps)}; guest instructions per MiB down ${paired(ours.downInstrPerMiB, s.downInstrPerMiB)}, ` +
        `up ${paired(ours.upInstrPerMiB, s.upInstrPerMiB)}`,
    );
  }
  const nc = NC_NICS.map((id) => ({ id, label: NICS.find((x) => x.id === id)!.label, r: n.nics[id] })).filter(({ r }) => r.ncDownMiBps && r.ncDownInstrPerMiB);
  if (nc.length) {
    out.push(
      `- host → guest with busybox nc instead (\`nc 10.0.2.2 PORT >/dev/null\`, the table's command before: it reads at most 1832 bytes per poll() and read()): ` +
        nc.map(({ label, r }) => `${label} ${cell(r.ncDownMiBps, 2)} MiB/s, ${m(r.ncDownInstrPerMiB, 1, 1e6)} Minstr/MiB`).join('; ') +
        (nc.length === 2 ? `; ours / stock ${paired(nc[0]!.r.ncDownMiBps, nc[1]!.r.ncDownMiBps)} the throughput, ${paired(nc[0]!.r.ncDownInstrPerMiB, nc[1]!.r.ncDownInstrPerMiB)} the instructions per MiB` : ''),
    );
  }
  if (n.wsCeiling) {
    const c = n.wsCeiling;
    out.push(
      `- the link's ceiling: a worker's WebSocket in this Chromium, receiving from loopback with nothing behind it (\`bench/suite/ws-ceiling.ts\`), ` +
        `took ${cell(c.superMiBps, 1)} MiB/s in 64 KiB messages (ours gets super-segments of up to 64 KiB) and ${cell(c.mtuMiBps, 1)} MiB/s in 1514-byte ones ` +
        `(stock v86's NICs get MTU frames); through the relay, no NIC receives faster than its frame size's ceiling`,
    );
  }
  if (n.modes) out.push('', ...modesSection(n.modes, n));
  return out;
}

function modesSection(m: ModeResults, n: NetResults): string[] {
  const out: string[] = [];
  out.push('#### Network modes');
  out.push('');
  out.push(
    `Our virtio-net in each mode, in the same rounds as the table above: ping to 10.0.2.2 (answered by the relay's gateway, or by the ` +
      `gateway in the VM's worker for wisp and fetch); host → guest with busybox wget from an HTTP server on loopback (${n.mib} MiB; ` +
      `fetch can carry nothing else); guest → host with fio's net engine (fetch cannot). wisp goes through this server's own /wisp/. ` +
      `Median of ${n.rounds} round(s), (min–max); ratios to the relay are the median of per-round ratios ± ${SPREAD_WORDS}.`,
  );
  out.push('');
  out.push(row(['mode', 'ping RTT (ms)', 'host → guest (MiB/s)', 'guest → host (MiB/s)', 'RTT / relay', 'down / relay', 'up / relay']));
  out.push(rule(7));
  for (const { id, label } of MODES) {
    const r = m.modes[id];
    const vs = id === 'relay' ? undefined : m.vsRelay[id];
    out.push(row([label, cell(r.pingMs, 2), cell(r.downMiBps, 2), cell(r.upMiBps, 2), ratioCell(vs?.pingMs), ratioCell(vs?.downMiBps), ratioCell(vs?.upMiBps)]));
  }
  return out;
}

function instantSection(i: NonNullable<BenchResults['instant']>): string[] {
  const MB = (f: Figure) => ({ ...f, median: f.median / 1e6, min: f.min / 1e6, max: f.max / 1e6, runs: f.runs.map((x) => x / 1e6) });
  return [
    '### Instant start',
    '',
    `Page load → shell prompt (\`virtioLab.ready\`, disk mounted), ${i.rounds} new user(s), return visits alternating restored / cold:`,
    '',
    '| visit | page load → prompt, ms |',
    '|---|---|',
    `| return, restored from the boot state | ${cell(i.restoredMs)} |`,
    `| return, cold boot (\`?boot=cold\`) | ${cell(i.coldMs)} |`,
    `| first (disk from its template, boot state saved) | ${cell(i.firstMs)} |`,
    '',
    `- restored / cold: ${ratio(i.restoredMs, i.coldMs)}; first visit / return cold: ${ratio(i.firstMs, i.coldMs)} (goal ≤ 1.2×); restored goal ≤ 1000 ms.`,
    `- the worker's restore (v86 + our devices): ${cell(i.restoreWorkerMs)} ms; boot state ${cell(MB(i.stateBytes), 2)} MB (goal ≤ 12); ` +
      `the first visit's guest paused ${cell(i.pauseMs)} ms to take it, then ${cell(i.storeMs)} ms to compress and store it while the guest ran.`,
    ...(i.network
      ? [
          `- restored with a NIC on the relay (its own boot state): page load → prompt ${cell(i.network.promptMs)} ms; ` +
            `prompt → DHCP lease ${cell(i.network.leaseMs)} ms; prompt → first ping of the gateway answered ${cell(i.network.pingMs)} ms (goal ≤ 1000).`,
        ]
      : []),
  ];
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`## virtio-lab benchmark, ${m.date}${m.quick ? ' (--quick: too short to quote)' : ''}`);
  out.push('');
  out.push(
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memGiB} GiB, ${m.os}; headless Chromium ${m.chromium}; Node ${m.node}; ` +
      `v86 ${m.v86}; guest Linux ${m.guestKernel}. Columns run interleaved (A B C A B C …) in one run; ` +
      'these machines are shared and noisy: the ratios are the result, absolute numbers are context.',
  );
  out.push('');
  if (r.disk) out.push(...diskSection(r.disk), '');
  if (r.net) out.push(...netSection(r.net), '');
  if (r.boot) {
    out.push('### Boot', '');
    out.push(`Worker start → shell prompt, no disk, cold context: ${cell(r.boot.ms)} ms over ${r.boot.runs} boot(s); image + wasm loaded at ${cell(r.boot.imageMs)} ms; longest main-thread task ${cell(r.boot.longestTaskMs)} ms.`, '');
  }
  if (r.instant) out.push(...instantSection(r.instant), '');
  if (r.inspector) {
    const i = r.inspector;
    out.push('### Ring inspector', '');
    out.push(
      `fio 4 KiB randread qd1 on a memory disk, ${i.seconds} s × ${i.rounds} per state: hidden ${cell(i.hiddenIops)} IOPS, shown ${cell(i.shownIops)} IOPS; ` +
        `shown/hidden ${(i.ratio.median * 100).toFixed(1)} % (rounds ${i.ratio.runs.map((x) => (x * 100).toFixed(0) + ' %').join(', ')}); ` +
        `a lesson open ${cell(i.lessonIops)} IOPS, lesson/hidden ${(i.lessonRatio.median * 100).toFixed(1)} % (rounds ${i.lessonRatio.runs.map((x) => (x * 100).toFixed(0) + ' %').join(', ')}).`,
      '',
    );
    if (i.hiddenCores && i.shownCores && i.lessonCores) {
      out.push(
        `In CPU time (what other processes cannot inflate): the lab's processes used ${cell(i.hiddenCores, 2)} cores hidden, ${cell(i.shownCores, 2)} shown, ` +
          `${cell(i.lessonCores, 2)} with a lesson open; guest instructions per CPU-second of them, shown / hidden ${ratioCell(i.instrPerCpuRatio)}, ` +
          `lesson / hidden ${ratioCell(i.lessonInstrPerCpuRatio)} (per-round ratios ± ${SPREAD_WORDS}).`,
        '',
      );
    }
  }
  return out.join('\n');
}
