import { afterEach, describe, expect, it } from 'vitest';
import {
  DNS_RCODE_NOERROR,
  DNS_RCODE_NXDOMAIN,
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  parseIp,
} from '../wire/index.ts';
import { dnsQuery, gatewayRoom, GW_IP } from './testing.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('gateway: DNS', () => {
  it('answers lab names and NXDOMAIN for others with nat host', async () => {
    const { guest } = gatewayRoom(cleanups, { names: { printer: '10.0.2.50' } });
    guest.ip = parseIp('10.0.2.15');
    const ask = async (name: string, type = DNS_TYPE_A) => {
      guest.udp(GW_IP, 40000, 53, dnsQuery(name, type));
      return (await guest.waitFor((d) => d.dns?.isResponse === true)).dns!;
    };
    for (const name of ['gateway', 'host', 'gateway.lab', 'HOST.LAB.', 'printer']) {
      const r = await ask(name);
      expect(r.rcode).toBe(DNS_RCODE_NOERROR);
      expect(r.id).toBe(0x4242);
      expect(r.flags & 0x0400).toBe(0x0400); // authoritative for lab names
      expect(r.questions[0].name.toLowerCase()).toBe(name.toLowerCase().replace(/\.$/, ''));
      expect(r.answers.map((a) => [...a.data].join('.'))).toEqual([name === 'printer' ? '10.0.2.50' : '10.0.2.2']);
    }
    expect((await ask('gateway', DNS_TYPE_AAAA)).answers).toEqual([]);
    expect((await ask('nobody.lab')).rcode).toBe(DNS_RCODE_NXDOMAIN);
    expect((await ask('example.com')).rcode).toBe(DNS_RCODE_NXDOMAIN);
  });

  it('resolves other names through the lookup only with nat all', async () => {
    const asked: string[] = [];
    const { guest } = gatewayRoom(cleanups, {
      nat: 'all',
      lookup: async (name) => {
        asked.push(name);
        if (name === 'example.com') return [parseIp('93.184.215.14')];
        throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
      },
    });
    guest.ip = parseIp('10.0.2.15');
    guest.udp(GW_IP, 40000, 53, dnsQuery('example.com', DNS_TYPE_A, 1));
    const r = (await guest.waitFor((d) => d.dns?.id === 1)).dns!;
    expect(r.answers.map((a) => [...a.data].join('.'))).toEqual(['93.184.215.14']);
    guest.udp(GW_IP, 40000, 53, dnsQuery('nope.invalid', DNS_TYPE_A, 2));
    expect((await guest.waitFor((d) => d.dns?.id === 2)).dns!.rcode).toBe(DNS_RCODE_NXDOMAIN);
    expect(asked).toEqual(['example.com', 'nope.invalid']);
  });

  it('answers FORMERR to a garbled query and survives garbage', async () => {
    const { guest, gw } = gatewayRoom(cleanups);
    guest.ip = parseIp('10.0.2.15');
    const bad = new Uint8Array(20);
    bad[0] = 0x12;
    bad[1] = 0x34;
    bad[5] = 9; // 9 questions in 8 bytes
    guest.udp(GW_IP, 40000, 53, bad);
    const r = await guest.waitFor((d) => d.udp?.srcPort === 53);
    expect(r.dns!.rcode).toBe(1);
    expect(r.dns!.id).toBe(0x1234);
    guest.udp(GW_IP, 40000, 53, new Uint8Array(3));
    expect(gw.stats().counts['drop-malformed-dns']).toBe(2);
  });
});
