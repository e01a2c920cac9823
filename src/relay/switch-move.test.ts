import { describe, expect, it } from 'vitest';
import { BROADCAST_MAC, ETHERTYPE_IPV4, buildEthernet, macToString, parseMac } from '../wire/ethernet.ts';
import { MAC_MOVE_BURST, MAC_MOVE_REFILL_S, SwitchRoom } from './switch.ts';

const OLD = parseMac('02:00:00:aa:bb:cc');
const NEW = parseMac('52:54:00:12:34:56');
const PEER = parseMac('02:00:00:11:22:33');
const frame = (dst: Uint8Array, src: Uint8Array) => buildEthernet({ dst, src, etherType: ETHERTYPE_IPV4, payload: new Uint8Array(46) });

describe('switch: a guest that changes its MAC', () => {
  it('moves its port: the table shows the new MAC, the old one is forgotten and reported, unicast follows', () => {
    let now = 0;
    const room = new SwitchRoom('r', { maxFrameBytes: 1514, now: () => now });
    const inbox: Uint8Array[][] = [[], []];
    const [guest, peer] = [0, 1].map((i) => room.attach({ deliver: (f) => (inbox[i]!.push(f), true) }, { label: `p${i}`, lockMac: true }));
    const moved: string[] = [];
    room.onMacMoved = (port, from) => moved.push(`${port.options.label} ${macToString(from)} → ${macToString(port.mac!)}`);
    guest!.input(frame(BROADCAST_MAC, OLD));
    peer!.input(frame(BROADCAST_MAC, PEER));
    guest!.input(frame(PEER, NEW));
    expect(moved).toEqual(['p0 02:00:00:aa:bb:cc → 52:54:00:12:34:56']);
    const s = room.stats();
    expect(s.ports[0]).toMatchObject({ mac: '52:54:00:12:34:56', drops: {} });
    expect([s.macTableSize, s.macMoves]).toEqual([2, 1]);
    peer!.input(frame(NEW, PEER)); // known unicast to the new MAC: forwarded to the guest
    expect(inbox[0]).toHaveLength(2);
    expect(room.stats().forwarded).toBe(2);
    peer!.input(frame(OLD, PEER)); // the old MAC is unknown now: flooded
    expect(room.stats().flooded).toBe(3);
    // The budget refills: after the burst, one more move per MAC_MOVE_REFILL_S.
    for (let i = 0; i < MAC_MOVE_BURST - 1; i++) guest!.input(frame(PEER, Uint8Array.of(2, 0, 0, 0, 0, i)));
    guest!.input(frame(PEER, OLD));
    expect(room.stats().ports[0].drops).toEqual({ spoofed: 1 });
    now += MAC_MOVE_REFILL_S * 1000;
    guest!.input(frame(PEER, OLD));
    expect(room.stats().ports[0].mac).toBe('02:00:00:aa:bb:cc');
    expect(moved).toHaveLength(MAC_MOVE_BURST + 1);
  });

  it("never moves onto another port's MAC, nor the gateway's fixed one", () => {
    const room = new SwitchRoom('r', { maxFrameBytes: 1514, now: () => 0 });
    const guest = room.attach({ deliver: () => true }, { label: 'guest', lockMac: true });
    const gw = room.attach({ deliver: () => true }, { label: 'gw', mac: PEER });
    guest.input(frame(BROADCAST_MAC, OLD));
    guest.input(frame(BROADCAST_MAC, PEER));
    gw.input(frame(BROADCAST_MAC, NEW));
    const s = room.stats();
    expect(s.ports.map((p) => [p.mac, p.drops])).toEqual([
      ['02:00:00:aa:bb:cc', { 'mac-in-use': 1 }],
      ['02:00:00:11:22:33', { spoofed: 1 }],
    ]);
    expect(s.macMoves).toBe(0);
  });
});
