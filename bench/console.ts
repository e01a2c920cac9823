/**
 * `npm run bench:console`: what run() costs over the virtio-console port vs the serial console,
 * in headless Chromium. The guest makes 1 MB (`head -c 1000000 /dev/zero | tr '\0' a`):
 *   - guest:  the guest's own time for it, output to /dev/null (busybox `time`, inside the guest)
 *   - port:   run() of it on the lab's page, output returned over the port (page clock)
 *   - serial: the same run() on a page booted with ?console=off (typed into the serial shell)
 *   - guest → port: the guest's own time when its output goes to the port (busybox `time`
 *     around the same pipeline in run()): what the guest's kernel spends writing to the port,
 *     apart from what the host spends after
 * and the cost of an empty command (`true`) both ways. Two VMs, one per path; rounds alternate.
 * Median of `--rounds` (default 3), (min–max).
 */
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { instructionsBetween, labGuest, type BenchGuest } from './suite/guests.ts';
import { ROOT } from './suite/server.ts';
import { median } from './stats.ts';

const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(process.argv[roundsArg + 1]) : 3;
const BYTES = 1_000_000;
const MAKE = `head -c ${BYTES} /dev/zero | tr '\\0' a`;

/** run(cmd) timed on the page's own clock (no Playwright round trip in the figure), ms. */
async function timedRun(g: BenchGuest, cmd: string): Promise<{ ms: number; length: number; status: number }> {
  return g.page.evaluate(async (c) => {
    const t0 = performance.now();
    const r = await window.virtioLab.run(c, { timeoutMs: 600_000 });
    return { ms: performance.now() - t0, length: r.output.length, status: r.status };
  }, cmd);
}

/**
 * The guest's own wall time for `cmd` (busybox `time`: "real 0m 1.08s"), ms: output to
 * /dev/null, or with `toPort` to run()'s own stdout, the port (which takes one opener: inherited, never reopened).
 */
async function guestTime(g: BenchGuest, cmd: string, toPort = false): Promise<number> {
  const r = await g.run(`time sh -c "${cmd.replace(/\\/g, '\\\\')}${toPort ? '' : ' > /dev/null'}" 2>&1`);
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(r.output.slice(-200));
  if (r.status !== 0 || !m) throw new Error(`guest time: ${r.output.slice(-500)}`);
  return (Number(m[1]) * 60 + Number(m[2])) * 1000;
}

const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

const server = createAppServer({ distDir: path.join(ROOT, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const browser = await chromium.launch(chromiumLaunchOptions());
try {
  const ctx = await browser.newContext();
  const port = await labGuest(ctx, origin, 'port', 'disk=none&net=none');
  const serial = await labGuest(ctx, origin, 'serial', 'disk=none&net=none&console=off');
  const agentUp = await port.page.evaluate(() => window.virtioLab.serialLog().includes('run() agent on'));
  if (!agentUp) throw new Error('the port page has no run() agent (old guest image?)');
  // Guest instructions (v86's counter, 32 bits: subtract with instructionsBetween): the figure
  // a shared machine's noise does not move.
  const instructions = async () => (await port.counters()).instructions;
  const instr = { guest: [] as number[], port: [] as number[] };
  const fig = { guest: [] as number[], guestPort: [] as number[], port: [] as number[], serial: [] as number[], truePort: [] as number[], trueSerial: [] as number[] };
  // Warm-up: v86's JIT and the guest's page cache.
  await guestTime(port, MAKE);
  await timedRun(port, MAKE);
  await timedRun(serial, 'true');
  for (let i = 0; i < rounds; i++) {
    const i0 = await instructions();
    fig.guest.push(await guestTime(port, MAKE));
    const i1 = await instructions();
    const p = await timedRun(port, MAKE);
    const i2 = await instructions();
    instr.guest.push(instructionsBetween(i0, i1));
    instr.port.push(instructionsBetween(i1, i2));
    fig.guestPort.push(await guestTime(port, MAKE, true));
    const s = await timedRun(serial, MAKE);
    if (p.length !== BYTES || s.length !== BYTES) throw new Error(`output lengths ${p.length} (port), ${s.length} (serial), want ${BYTES}`);
    fig.port.push(p.ms);
    fig.serial.push(s.ms);
    fig.truePort.push((await timedRun(port, 'true')).ms);
    fig.trueSerial.push((await timedRun(serial, 'true')).ms);
    console.log(`round ${i + 1}: guest ${fig.guest[i].toFixed(0)} ms, port ${p.ms.toFixed(0)} ms (${(p.ms / fig.guest[i]).toFixed(2)}×), serial ${s.ms.toFixed(0)} ms`);
  }
  // Ratios per round (the guest's time and the run() next to each other), then their median:
  // on a shared machine the load drifts between rounds far more than within one.
  const ratio = (xs: number[]) => median(xs.map((x, i) => x / fig.guest[i]));
  const rp = ratio(fig.port);
  const rs = ratio(fig.serial);
  console.log(`\nrun() of 1 MB of output (${MAKE}), Chromium ${browser.version()}, median of ${rounds} (min–max):`);
  console.log(`  guest's own time (to /dev/null):  ${fmt(fig.guest)}`);
  console.log(`  run() over the virtio-console port: ${fmt(fig.port)}  = ${rp.toFixed(2)}× the guest's time (+${((rp - 1) * 100).toFixed(0)} %; per-round ratios, median)`);
  console.log(`    of which the guest writing to the port: ${fmt(fig.guestPort)}  = ${ratio(fig.guestPort).toFixed(2)}× the guest's time`);
  console.log(
    `  guest instructions: ${(median(instr.guest) / 1e6).toFixed(1)} M to /dev/null, ${(median(instr.port) / 1e6).toFixed(1)} M for run() over the port ` +
      `(${median(instr.port.map((x, i) => x / instr.guest[i])).toFixed(3)}×; run()'s own shell and markers included)`,
  );
  console.log(`  run() over the serial console:      ${fmt(fig.serial)}  = ${rs.toFixed(2)}× the guest's time; the port is ${median(fig.serial.map((x, i) => x / fig.port[i])).toFixed(1)}× faster`);
  console.log(`  run('true'): port ${fmt(fig.truePort)}, serial ${fmt(fig.trueSerial)}`);
  await port.close();
  await serial.close();
} finally {
  await browser.close();
  server.close();
}
