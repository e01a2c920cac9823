import { afterEach, describe, expect, it } from 'vitest';
import { ETH_MAX_FRAME } from '../wire/ethernet.ts';
import { ipToString, parseIp } from '../wire/ipv4.ts';
import { addressingFor, addressingForClients, poolSize } from './addressing.ts';
import { Gateway } from './gateway.ts';
import { SwitchRoom } from './switch.ts';
import { FakeGuest } from './testing.ts';

describe('room addressing', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => cleanups.splice(0).forEach((f) => f()));

  it('keeps the classic /24 for small rooms and widens the prefix for large ones', () => {
    expect(addressingForClients(32)).toEqual({ netmask: '255.255.255.0', dhcpStart: '10.0.2.15', dhcpEnd: '10.0.2.254', prefixLength: 24 });
    const big = addressingForClients(500);
    expect(big).toEqual({ netmask: '255.255.248.0', dhcpStart: '10.0.2.15', dhcpEnd: '10.0.7.254', prefixLength: 21 });
    expect(poolSize(big)).toBe(1520);
    expect(poolSize(addressingFor(16))).toBe(parseIp('10.0.255.254') - parseIp('10.0.2.15') + 1);
    expect(() => addressingFor(25)).toThrow(/16\.\.24/);
    expect(() => addressingForClients(100_000)).toThrow(/no room prefix/);
  });

  it('gives 500 guests of one room distinct leases inside the subnet, never the gateway', async () => {
    const a = addressingForClients(500);
    const room = new SwitchRoom('big', { maxFrameBytes: ETH_MAX_FRAME });
    const gw = new Gateway(room, { netmask: a.netmask, dhcpStart: a.dhcpStart, dhcpEnd: a.dhcpEnd });
    cleanups.push(() => gw.close());
    const ips = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const g = new FakeGuest(room, mac);
      const { ack } = await g.lease(0x1000 + i);
      expect(ack.dhcp!.messageType).toBe(5);
      ips.add(ipToString(g.ip));
      const mask = ack.dhcp!.options.get(1)!;
      expect([...mask]).toEqual([255, 255, 248, 0]);
    }
    expect(ips.size).toBe(500);
    expect(ips.has('10.0.2.2')).toBe(false);
    for (const ip of ips) expect((parseIp(ip) & 0xfffff800) >>> 0).toBe(parseIp('10.0.0.0'));
    expect(gw.stats().leases).toHaveLength(500);
  }, 90_000); // 500 DHCP exchanges: tens of seconds on a loaded 2-core machine
});
