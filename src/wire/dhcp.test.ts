import { describe, expect, it } from 'vitest';
import { DHCPDISCOVER, DhcpOption, buildDhcp, parseDhcp } from './dhcp.ts';
import { macToString, parseMac } from './ethernet.ts';

const A = parseMac('52:54:00:12:34:56');

describe('DHCP', () => {
  it('round trips options (and splits long ones)', () => {
    const long = new Uint8Array(300).fill(65);
    const m = buildDhcp({ op: 1, xid: 0xdeadbeef, chaddr: A, flags: 0x8000, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([DHCPDISCOVER])], [DhcpOption.HOSTNAME, long]] });
    const p = parseDhcp(m)!;
    expect(p.xid).toBe(0xdeadbeef);
    expect(p.messageType).toBe(DHCPDISCOVER);
    expect(p.flags).toBe(0x8000);
    expect(macToString(p.chaddr)).toBe(macToString(A));
    expect(p.options.get(DhcpOption.HOSTNAME)!.length).toBe(300);
  });
  it('rejects a missing magic cookie and overlong options', () => {
    const m = buildDhcp({ op: 1, xid: 1, chaddr: A, options: [[53, new Uint8Array([1])]] });
    const bad = m.slice();
    bad[236] = 0;
    expect(parseDhcp(bad)).toBeNull();
    const over = m.slice(0, 243);
    over[241] = 50; // option 53 claims 50 bytes
    expect(parseDhcp(over)).toBeNull();
  });
});
