/**
 * Relay clustering end to end: a real nats-server (started here; the test fails, never
 * skips, when it is missing), two relay processes on it, and two real guests (Node runner)
 * in one room on different relays: distinct leases from the shared lease bucket, pings both
 * ways across the cluster. A synthetic guest in another room cannot reach them. Then one
 * relay is SIGKILLed: its peer forgets the MACs learned from it, and the guest on the
 * surviving relay keeps pinging its gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipToString, parseIp } from '../../src/wire/ipv4.ts';
import { parseMac } from '../../src/wire/ethernet.ts';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';
import { type NatsProc, natsServerBinary, type RelayProc, startNats, startRelay } from '../../bench/suite/cluster-procs.ts';
import { LoadGuest } from '../../bench/suite/load-guest.ts';
import { PingLedger } from '../../bench/suite/ping-ledger.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MAC_A = '52:54:00:c1:00:0a';
const MAC_B = '52:54:00:c1:00:0b';

async function leaseOf(vm: NodeVm): Promise<string> {
  const r = await vm.session.run('for i in $(seq 100); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0', {
    timeoutMs: 40_000,
  });
  const m = /inet (10\.0\.\d+\.\d+)\/(\d+)/.exec(r.output);
  if (!m) throw new Error(`no lease: ${r.output}`);
  return m[1];
}

describe('two relays on one NATS share a room', () => {
  let nats: NatsProc;
  let relayA: RelayProc;
  let relayB: RelayProc;
  let vmA: NodeVm;
  let vmB: NodeVm;
  let ipA = '';
  let ipB = '';

  beforeAll(async () => {
    natsServerBinary(); // throws "nats-server is not installed …": a failure, not a skip
    nats = await startNats();
    [relayA, relayB] = await Promise.all([startRelay(nats.url), startRelay(nats.url)]);
    const url = (r: RelayProc, room: string) => `ws://127.0.0.1:${r.port}/relay/${room}`;
    [vmA, vmB] = await Promise.all([
      startNodeVm({ net: { relayUrl: url(relayA, 'class'), mac: MAC_A } }),
      startNodeVm({ net: { relayUrl: url(relayB, 'class'), mac: MAC_B } }),
    ]);
    await Promise.all([vmA.session.ready, vmB.session.ready]);
    [ipA, ipB] = await Promise.all([leaseOf(vmA), leaseOf(vmB)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([vmA?.stop(), vmB?.stop()]);
    await Promise.all([relayA?.stop(), relayB?.stop()]);
    await nats?.stop();
  });

  it('gives the guests distinct leases in the room’s subnet', async () => {
    expect(ipA).not.toBe(ipB);
    for (const ip of [ipA, ipB]) expect(ip).toMatch(/^10\.0\.2\.\d+$/);
    const [a, b] = await Promise.all([relayA.sample(), relayB.sample()]);
    // Each relay created one lease key and sees the other's relay alive.
    expect(a.cluster).toMatchObject({ connected: 1, peers: 1, 'leases-lease-created': 1 });
    expect(b.cluster).toMatchObject({ connected: 1, peers: 1, 'leases-lease-created': 1 });
  });

  it('lets the guests ping each other across the relays', async () => {
    const ab = await vmA.session.run(`ping -c 5 -i 0.2 ${ipB}`, { timeoutMs: 20_000 });
    expect(ab.output).toMatch(/5 packets transmitted, 5 packets received, 0% packet loss/);
    const ba = await vmB.session.run(`ping -c 5 -i 0.2 ${ipA}`, { timeoutMs: 20_000 });
    expect(ba.output).toMatch(/5 packets transmitted, 5 packets received, 0% packet loss/);
    const a = await relayA.sample();
    expect(Number(a.cluster!['frames-out-unicast'])).toBeGreaterThan(0);
  }, 60_000);

  it('keeps another room apart: a guest there reaches neither guest', async () => {
    const intruder = await LoadGuest.open(`ws://127.0.0.1:${relayB.port}/relay/other`, parseMac('02:66:00:00:00:01'), 501);
    try {
      expect(await intruder.lease(0x501)).not.toBe(0);
      // No ARP answer for the guests' addresses in this room…
      expect(await intruder.resolve(parseIp(ipA), 2, 1000)).toBeNull();
      expect(await intruder.resolve(parseIp(ipB), 2, 1000)).toBeNull();
      // …and echo requests sent straight to their MACs are not answered.
      const ledger = new PingLedger();
      for (let i = 0; i < 5; i++) {
        intruder.ping(parseMac(MAC_A), parseIp(ipA), 0x700, ledger);
        intruder.ping(parseMac(MAC_B), parseIp(ipB), 0x700, ledger);
      }
      await sleep(1500);
      ledger.expire(performance.now() - 1000);
      expect(ledger.summary()).toMatchObject({ sent: 10, received: 0, lost: 10 });
    } finally {
      await intruder.close();
    }
  }, 30_000);

  it('survives a relay that dies: its MACs are forgotten, the other relay’s guest keeps pinging the gateway', async () => {
    const before = await relayA.sample();
    expect(Number(before.cluster!.remoteMacs)).toBeGreaterThan(0);
    relayB.proc.kill('SIGKILL');
    // Past the 10 s a peer may stay silent before it counts as dead.
    const r = await vmA.session.run('ping -c 60 -i 0.2 10.0.2.2', { timeoutMs: 40_000 });
    expect(r.output).toMatch(/60 packets transmitted, 60 packets received, 0% packet loss/);
    const after = await relayA.sample();
    expect(after.cluster).toMatchObject({ connected: 1, peers: 0, remoteMacs: 0 });
    expect(Number(after.cluster!['relay-lost'])).toBe(1);
    // Still serves: a new client of the room gets a lease that is not the dead relay's guest's.
    const late = await LoadGuest.open(`ws://127.0.0.1:${relayA.port}/relay/class`, parseMac('02:66:00:00:00:02'), 503);
    try {
      const ip = await late.lease(0x503);
      expect(ip).not.toBe(0);
      expect([ipA, ipB]).not.toContain(ipToString(ip));
    } finally {
      await late.close();
    }
  }, 90_000);
});
