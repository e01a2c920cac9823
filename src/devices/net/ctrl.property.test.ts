import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { macKey } from '../../wire/ethernet.ts';
import { MAC_TABLE_ENTRIES } from './ctrl-budget.ts';
import { parseCtrlRequest } from './ctrl-command.ts';
import { RxFilter } from './ctrl-filter.ts';
import { macAddrRequest, macTableRequest, offloadsRequest, rxModeRequest } from './ctrl-testing.ts';
import { GUEST_MAC } from './testing.ts';

const macArb = fc.oneof(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.constantFrom(GUEST_MAC, Uint8Array.of(255, 255, 255, 255, 255, 255), Uint8Array.of(1, 0, 0x5e, 0, 0, 1)));
const listArb = fc.record({ macs: fc.array(macArb, { maxLength: 8 }), overflow: fc.boolean() });
const stateArb = fc.record({
  promisc: fc.boolean(),
  allmulti: fc.boolean(),
  alluni: fc.boolean(),
  nomulti: fc.boolean(),
  nouni: fc.boolean(),
  nobcast: fc.boolean(),
  unicast: listArb,
  multicast: listArb,
});

const frameTo = (dst: Uint8Array) => Uint8Array.of(...dst, 2, 0, 0, 0, 0, 1, 0x08, 0x00);

describe('virtio-net control: properties', () => {
  it('any request bytes parse or give a reason, never throw; a driver’s requests parse back to what was sent', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const r = parseCtrlRequest(bytes);
        expect(r.ok || r.reason.length > 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.array(macArb, { maxLength: 100 }), fc.array(macArb, { maxLength: 100 }), (uni, multi) => {
        const r = parseCtrlRequest(macTableRequest(uni, multi));
        if (!r.ok || r.command.kind !== 'mac-table') throw new Error('a driver’s table did not parse');
        // Kept up to the bound; past it, overflow instead.
        expect(r.command.unicast.macs).toEqual(uni.slice(0, MAC_TABLE_ENTRIES));
        expect(r.command.unicast.overflow).toBe(uni.length > MAC_TABLE_ENTRIES);
        expect(r.command.multicast.macs).toEqual(multi.slice(0, MAC_TABLE_ENTRIES));
        expect(r.command.multicast.overflow).toBe(multi.length > MAC_TABLE_ENTRIES);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.boolean(), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (cmd, on, offloads) => {
        expect(parseCtrlRequest(rxModeRequest(cmd, on))).toEqual({ ok: true, command: { kind: 'rx', command: cmd, on } });
        expect(parseCtrlRequest(offloadsRequest(offloads))).toEqual({ ok: true, command: { kind: 'guest-offloads', offloads } });
        const mac = Uint8Array.of(2, cmd, 0, 0, 0, 1);
        expect(parseCtrlRequest(macAddrRequest(mac))).toEqual({ ok: true, command: { kind: 'mac-addr', mac } });
      }),
    );
  });

  it('the receive filter: promiscuous takes all; otherwise broadcast per NOBCAST, our MAC and listed addresses unless NOUNI/NOMULTI, the rest only with ALL*/overflow', () => {
    fc.assert(
      fc.property(stateArb, macArb, macArb, (state, own, dst) => {
        const f = new RxFilter(own);
        f.setState(state);
        const multicast = (dst[0]! & 1) === 1;
        const listed = (l: { macs: Uint8Array[] }) => l.macs.some((m) => macKey(m) === macKey(dst));
        let want: boolean;
        if (state.promisc) want = true;
        else if (macKey(dst) === 0xffffffffffff) want = !state.nobcast;
        else if (multicast) want = !state.nomulti && (state.allmulti || state.multicast.overflow || listed(state.multicast));
        else want = !state.nouni && (state.alluni || state.unicast.overflow || macKey(dst) === macKey(own) || listed(state.unicast));
        expect(f.accepts(frameTo(dst))).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });
});
