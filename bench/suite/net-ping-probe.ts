/**
 * Where a ping's milliseconds go (issue 17's ping goal). One lab page in Chromium on the
 * bench server (build dist/ first), `ping -c N -i 0.1 10.0.2.2`, then the NIC's pcap (worker
 * timestamps: tx when the frame leaves for the link, rx when it enters the guest's buffers):
 * per echo, the worker ↔ relay part (tx request → rx reply) and the guest part (its RTT minus
 * that). `--trace` turns the inspector on first and adds, from its timeline, the guest's tx
 * kick → our pop (the kick's wait) and our pop → the reply's delivery.
 *
 *   node --import tsx bench/suite/net-ping-probe.ts [pings] [--trace]
 */
import fs from 'node:fs';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../../e2e/chromium.ts';
import { labGuest } from './guests.ts';
import { startBenchServer } from './server.ts';
import { median } from '../stats.ts';

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 40);
const server = await startBenchServer();
const browser = await chromium.launch(chromiumLaunchOptions());
const ctx = await browser.newContext({ acceptDownloads: true });
try {
  const g = await labGuest(ctx, server.origin, 'ours', 'disk=none&room=ping-probe');
  await g.run('for i in $(seq 100); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done', 60_000);
  await g.run('ping -c 3 10.0.2.2', 30_000);
  const trace = process.argv.includes('--trace');
  if (trace) await g.page.evaluate(() => window.virtioLab.inspector.show());
  const out = (await g.run(`ping -c ${N} -i 0.1 10.0.2.2`, 120_000)).output;
  if (trace) {
    const events = await g.page.evaluate(() => window.virtioLab.inspector.events('virtio-net'));
    const icmp = events.filter((e) => e.queue >= 0 && e.queue <= 1);
    // Per echo: tx kick → tx pop (deferral), rx complete → interrupt.
    const kickToPop: number[] = [];
    const popToRx: number[] = [];
    for (let i = 0; i < icmp.length; i++) {
      const e = icmp[i];
      if (e.kind !== 'kick' || e.queue !== 1) continue;
      const pop = icmp.slice(i + 1).find((x) => x.kind === 'pop' && x.queue === 1);
      const rx = pop && icmp.slice(icmp.indexOf(pop) + 1).find((x) => x.kind === 'complete' && x.queue === 0);
      if (!pop || !rx) continue;
      kickToPop.push(pop.t - e.t);
      popToRx.push(rx.t - pop.t);
    }
    console.log(icmp.slice(-16).map((e) => `${e.t.toFixed(2)} ${e.kind} q${e.queue} ${e.detail ?? ''}`).join('\n'));
    const f = (xs: number[]) => `median ${median(xs).toFixed(3)} (min ${Math.min(...xs).toFixed(3)}, max ${Math.max(...xs).toFixed(3)}) n=${xs.length}`;
    console.log(`tx kick → pop ${f(kickToPop)} ms`);
    console.log(`tx pop → rx complete ${f(popToRx)} ms`);
  }
  const rtt = new Map<number, number>();
  for (const m of out.matchAll(/seq=(\d+) ttl=\d+ time=([\d.]+) ms/g)) rtt.set(Number(m[1]), Number(m[2]));
  const downloading = g.page.waitForEvent('download');
  await g.page.getByRole('button', { name: 'Capture (pcap)' }).click();
  const pcap = fs.readFileSync((await (await downloading).path())!);
  const tx = new Map<number, number>();
  const rx = new Map<number, number>();
  for (let at = 24; at + 16 <= pcap.length; ) {
    const us = pcap.readUInt32LE(at) * 1e6 + pcap.readUInt32LE(at + 4);
    const len = pcap.readUInt32LE(at + 8);
    const f = pcap.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (f.length < 42 || f[12] !== 8 || f[13] !== 0 || f[23] !== 1) continue;
    const l4 = 14 + (f[14] & 15) * 4;
    const seq = f.readUInt16BE(l4 + 6);
    if (f[l4] === 8) tx.set(seq, us / 1000);
    if (f[l4] === 0) rx.set(seq, us / 1000);
  }
  const wire: number[] = [];
  const guest: number[] = [];
  const last = [...rtt.keys()].slice(-N);
  for (const seq of last) {
    const t = tx.get(seq);
    const r = rx.get(seq);
    if (t === undefined || r === undefined) continue;
    wire.push(r - t);
    guest.push(rtt.get(seq)! - (r - t));
  }
  const f = (xs: number[]) => `median ${median(xs).toFixed(2)} (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)})`;
  console.log(`guest RTT ${f(last.map((s) => rtt.get(s)!))} ms`);
  console.log(`worker tx→rx ${f(wire)} ms`);
  console.log(`guest part ${f(guest)} ms`);
} finally {
  await browser.close();
  await server.close();
}
