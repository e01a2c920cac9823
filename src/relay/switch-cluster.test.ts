/** The switch's rules for a cluster link: many MACs, source-guarded, never mixed with the local gateway. */
import { afterEach, describe, expect, it } from 'vitest';
import { buildIcmp, ETH_MAX_FRAME, ICMP_ECHO_REQUEST, IPPROTO_ICMP, macKey, parseIp, parseMac } from '../wire/index.ts';
import { Gateway } from './gateway.ts';
import { SwitchRoom } from './switch.ts';
import { FakeGuest, GW_IP, GW_MAC, ipv4Frame } from './testing.ts';

describe('switch with a cluster link', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => cleanups.splice(0).forEach((f) => f()));

  function setup() {
    const room = new SwitchRoom('lab', { maxFrameBytes: ETH_MAX_FRAME });
    const gw = new Gateway(room, {});
    cleanups.push(() => gw.close());
    const toCluster: Uint8Array[] = [];
    const link = room.attach({ deliver: (f) => (toCluster.push(f), true) }, { label: 'cluster', remote: true });
    const guest = new FakeGuest(room, '52:54:00:12:34:56');
    return { room, gw, link, guest, toCluster };
  }
  const remoteMac = parseMac('52:54:00:99:00:01');
  const echo = (srcMac: Uint8Array, src: string, dstMac: Uint8Array, dst: number) =>
    ipv4Frame(srcMac, dstMac, { src: parseIp(src), dst, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_ECHO_REQUEST, id: 1, seq: 1 }) });

  it('never lets frames from other relays reach this relay’s gateway, nor the gateway’s reach them', async () => {
    const { room, gw, link, guest, toCluster } = setup();
    link.input(echo(remoteMac, '10.0.2.99', GW_MAC, GW_IP));
    expect(gw.stats().counts['icmp-echo']).toBeUndefined();
    expect(room.stats().drops['local-only']).toBe(1);
    // A local guest's ping to the gateway is answered locally and nothing of it crosses.
    await guest.lease();
    toCluster.length = 0;
    guest.send(echo(guest.mac, '10.0.2.15', GW_MAC, GW_IP));
    expect(gw.stats().counts['icmp-echo']).toBe(1);
    expect(toCluster.filter((f) => macKey(f, 6) === macKey(GW_MAC))).toEqual([]);
  });

  it('learns many MACs on the link, forgets them on request, and guards their sources', async () => {
    const { room, link, guest, toCluster } = setup();
    await guest.lease();
    link.input(echo(remoteMac, '10.0.2.99', guest.mac, guest.ip));
    link.input(echo(parseMac('52:54:00:99:00:02'), '10.0.2.98', guest.mac, guest.ip));
    expect(room.hasMac(macKey(remoteMac))).toBe(true);
    expect(room.hasLocalMac(macKey(remoteMac))).toBe(false);
    expect(room.hasLocalMac(macKey(guest.mac))).toBe(true);
    // A remote frame claiming the local guest's leased address is refused by the source guard.
    link.input(echo(parseMac('52:54:00:99:00:03'), '10.0.2.15', guest.mac, guest.ip));
    expect(room.stats().drops['ip-spoof']).toBe(1);
    // …and one claiming the local guest's MAC is refused too.
    link.input(echo(guest.mac, '10.0.2.97', guest.mac, guest.ip));
    expect(room.stats().drops['mac-in-use']).toBe(1);
    // Unicast from the guest to a remote MAC goes to the link; once forgotten, it floods (to the link too).
    toCluster.length = 0;
    guest.send(echo(guest.mac, '10.0.2.15', remoteMac, parseIp('10.0.2.99')));
    expect(room.stats().forwarded).toBeGreaterThan(0);
    room.forget(link, macKey(remoteMac));
    expect(room.hasMac(macKey(remoteMac))).toBe(false);
    room.forget(link, macKey(guest.mac)); // not the link's: kept
    expect(room.hasLocalMac(macKey(guest.mac))).toBe(true);
    expect(toCluster).toHaveLength(1);
  });
});
