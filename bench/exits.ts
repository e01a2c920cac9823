/**
 * `npm run bench:exits`: BAR accesses ("exits") and interrupts per virtio request, I/O BAR
 * versus memory BAR, measured on the real guest with virtio-rng. Boots alternate (io, mem,
 * io, mem …) so machine drift hits both alike. `--quick`: one boot each.
 */
import os from 'node:os';
import { startNodeVm } from '../src/vm/node/node-machine.ts';
import type { DeviceStats } from '../src/vm/protocol.ts';
import { median, summary } from './stats.ts';

const quick = process.argv.includes('--quick');
const rounds = quick ? 1 : 3;
/** /dev/hwrng reads of 64 bytes: one virtio request each. */
const READS = quick ? 200 : 2000;

interface Sample {
  exitsPerRequest: number;
  interruptsPerRequest: number;
  msPerRequest: number;
}

async function measure(barKind: 'io' | 'mem'): Promise<Sample> {
  const vm = await startNodeVm({ devices: { barKind } });
  try {
    await vm.session.ready;
    const rng = () => vm.machine.deviceStats().find((d) => d.name === 'virtio-rng') as DeviceStats;
    const a = rng();
    const t0 = performance.now();
    const r = await vm.session.run(`i=0; while [ $i -lt ${READS} ]; do head -c 64 /dev/hwrng >/dev/null; i=$((i+1)); done`, {
      timeoutMs: 300_000,
    });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`guest loop failed: ${r.output}`);
    const b = rng();
    const requests = b.notifies - a.notifies;
    return {
      exitsPerRequest: (b.barReads + b.barWrites - a.barReads - a.barWrites) / requests,
      interruptsPerRequest: (b.interrupts - a.interrupts) / requests,
      msPerRequest: ms / requests,
    };
  } finally {
    await vm.stop();
  }
}

console.log(`BAR exits per request, virtio-rng, ${READS} reads × ${rounds} boot(s) per kind, ${os.cpus().length} cores, Node ${process.version}`);
const results: Record<'io' | 'mem', Sample[]> = { io: [], mem: [] };
for (let i = 0; i < rounds; i++) {
  for (const kind of ['io', 'mem'] as const) {
    const s = await measure(kind);
    results[kind].push(s);
    console.log(
      `  ${kind.padEnd(3)} round ${i + 1}: ${s.exitsPerRequest.toFixed(2)} exits/request, ${s.interruptsPerRequest.toFixed(2)} interrupts/request, ${(s.msPerRequest * 1000).toFixed(0)} µs/request (wall time of the guest loop over all requests, the kernel hwrng thread's included)`,
    );
  }
}
console.log('');
for (const kind of ['io', 'mem'] as const) {
  console.log(`${kind.padEnd(3)} exits/request ${summary(results[kind].map((s) => s.exitsPerRequest), '', 2)}`);
  console.log(`${kind.padEnd(3)} µs/request    ${summary(results[kind].map((s) => s.msPerRequest * 1000), 'µs')}`);
}
const ratio = median(results.mem.map((s) => s.exitsPerRequest)) / median(results.io.map((s) => s.exitsPerRequest));
const timeRatio = median(results.mem.map((s) => s.msPerRequest)) / median(results.io.map((s) => s.msPerRequest));
console.log(`mem/io: ${ratio.toFixed(2)}× the exits, ${timeRatio.toFixed(2)}× the time per request`);
