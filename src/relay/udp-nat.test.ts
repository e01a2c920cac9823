import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import {
  ipToString,
  parseIp,
} from '../wire/index.ts';
import { GW_IP, gatewayRoom } from './testing.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('gateway: UDP NAT', () => {
  it('NATs 10.0.2.2:P to a dgram echo server on 127.0.0.1:P and back', async () => {
    const server = dgram.createSocket('udp4');
    cleanups.push(() => server.close());
    server.on('message', (msg, rinfo) => server.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const port = server.address().port;
    const { guest, gw } = gatewayRoom(cleanups);
    guest.ip = parseIp('10.0.2.15');
    guest.udp(GW_IP, 33333, port, new TextEncoder().encode('hello'));
    const r = await guest.waitFor((d) => d.udp?.dstPort === 33333);
    expect(new TextDecoder().decode(r.udp!.payload)).toBe('echo:hello');
    expect(ipToString(r.ipv4!.src)).toBe('10.0.2.2');
    expect(r.udp!.srcPort).toBe(port);
    expect(gw.stats().udpFlows).toBe(1);
    guest.udp(GW_IP, 33333, port, new TextEncoder().encode('again'));
    await guest.waitFor((d) => d.udp?.dstPort === 33333);
    expect(gw.stats().udpFlows).toBe(1);
  });

  it('refuses other destinations with nat host (ICMP prohibited) and everything with nat off', async () => {
    const { guest, gw } = gatewayRoom(cleanups);
    guest.ip = parseIp('10.0.2.15');
    guest.udp(parseIp('192.0.2.1'), 1000, 9, new Uint8Array(4));
    const icmp = await guest.waitFor((d) => d.icmp !== undefined);
    expect([icmp.icmp!.type, icmp.icmp!.code]).toEqual([3, 13]);
    expect(gw.stats().counts['udp-nat-denied']).toBe(1);
    const off = gatewayRoom(cleanups, { nat: 'off' });
    off.guest.ip = parseIp('10.0.2.15');
    off.guest.udp(GW_IP, 1000, 9, new Uint8Array(4));
    expect(off.gw.stats().counts['udp-nat-denied']).toBe(1);
    expect(off.gw.natTarget(GW_IP, 80)).toBeNull();
    const all = gatewayRoom(cleanups, { nat: 'all' });
    expect(all.gw.natTarget(parseIp('192.0.2.1'), 80)).toEqual({ host: '192.0.2.1', port: 80 });
    expect(all.gw.natTarget(parseIp('10.0.2.77'), 80)).toBeNull(); // the lab's own subnet
    expect(all.gw.natTarget(parseIp('127.0.0.1'), 80)).toBeNull();
    expect(all.gw.natTarget(GW_IP, 80)).toEqual({ host: '127.0.0.1', port: 80 });
  });

  it('caps the number of UDP flows', async () => {
    const { guest, gw } = gatewayRoom(cleanups, { maxUdpFlows: 2 });
    guest.ip = parseIp('10.0.2.15');
    for (let p = 1; p <= 4; p++) guest.udp(GW_IP, 1000 + p, 9, new Uint8Array(1));
    expect(gw.stats().udpFlows).toBe(2);
    expect(gw.stats().counts['udp-too-many-flows']).toBe(2);
  });
});
