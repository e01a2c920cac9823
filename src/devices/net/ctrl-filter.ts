/**
 * The receive filter a driver sets through the control queue (§5.1.6.5.1, §5.1.6.5.2): which
 * frames from the link reach the guest. What passes, with promiscuous mode off:
 *  - unicast: to the NIC's MAC (the one MAC_ADDR_SET last set) or one in the unicast table;
 *    every unicast with ALLUNI or an overflowed unicast list; none with NOUNI;
 *  - broadcast: unless NOBCAST;
 *  - other multicast: with ALLMULTI or an overflowed multicast list, else those in the
 *    multicast table; none with NOMULTI (it wins over ALLMULTI).
 * Power-on and reset state: promiscuous, empty tables (a driver without CTRL_RX gets every
 * frame, as before the control queue existed). Linux turns promiscuous mode off when it brings
 * eth0 up and sends its multicast memberships as the table.
 */
import { macFromKey, macKey } from '../../wire/ethernet.ts';
import type { MacList } from './ctrl-command.ts';
import { NetCtrlRx } from './spec.ts';

const BROADCAST_KEY = 0xffff_ffff_ffff;

export interface RxFilterState {
  promisc: boolean;
  allmulti: boolean;
  alluni: boolean;
  nomulti: boolean;
  nouni: boolean;
  nobcast: boolean;
  unicast: MacList;
  multicast: MacList;
}

export class RxFilter {
  promisc = true;
  allmulti = false;
  alluni = false;
  nomulti = false;
  nouni = false;
  nobcast = false;
  /** The tables as macKey numbers (a frame's check is two Set lookups at most). */
  private unicast = new Set<number>();
  private multicast = new Set<number>();
  private unicastOverflow = false;
  private multicastOverflow = false;

  /** The NIC's address as a macKey (one number compare per frame). */
  private own: number;

  constructor(mac: Uint8Array) {
    this.own = macKey(mac);
  }

  /** The NIC's address changed (MAC_ADDR_SET, reset). */
  setMac(mac: Uint8Array): void {
    this.own = macKey(mac);
  }

  reset(): void {
    this.setState({ promisc: true, allmulti: false, alluni: false, nomulti: false, nouni: false, nobcast: false, unicast: { macs: [], overflow: false }, multicast: { macs: [], overflow: false } });
  }

  /** VIRTIO_NET_CTRL_RX_* `command` on or off. */
  setMode(command: number, on: boolean): void {
    switch (command) {
      case NetCtrlRx.PROMISC:
        return void (this.promisc = on);
      case NetCtrlRx.ALLMULTI:
        return void (this.allmulti = on);
      case NetCtrlRx.ALLUNI:
        return void (this.alluni = on);
      case NetCtrlRx.NOMULTI:
        return void (this.nomulti = on);
      case NetCtrlRx.NOUNI:
        return void (this.nouni = on);
      case NetCtrlRx.NOBCAST:
        return void (this.nobcast = on);
    }
  }

  setTable(unicast: MacList, multicast: MacList): void {
    this.unicast = new Set(unicast.macs.map((m) => macKey(m)));
    this.multicast = new Set(multicast.macs.map((m) => macKey(m)));
    this.unicastOverflow = unicast.overflow;
    this.multicastOverflow = multicast.overflow;
  }

  /** Whether a frame (≥ 14 bytes) to the destination at its start reaches the guest. */
  accepts(frame: Uint8Array): boolean {
    if (this.promisc) return true;
    const dst = macKey(frame, 0);
    if (frame[0]! & 1) {
      if (dst === BROADCAST_KEY) return !this.nobcast;
      if (this.nomulti) return false;
      return this.allmulti || this.multicastOverflow || this.multicast.has(dst);
    }
    if (this.nouni) return false;
    return this.alluni || this.unicastOverflow || dst === this.own || this.unicast.has(dst);
  }

  get state(): RxFilterState {
    const list = (keys: Set<number>, overflow: boolean): MacList => ({ macs: [...keys].map(macFromKey), overflow });
    return {
      promisc: this.promisc,
      allmulti: this.allmulti,
      alluni: this.alluni,
      nomulti: this.nomulti,
      nouni: this.nouni,
      nobcast: this.nobcast,
      unicast: list(this.unicast, this.unicastOverflow),
      multicast: list(this.multicast, this.multicastOverflow),
    };
  }

  setState(s: RxFilterState): void {
    this.promisc = s.promisc;
    this.allmulti = s.allmulti;
    this.alluni = s.alluni;
    this.nomulti = s.nomulti;
    this.nouni = s.nouni;
    this.nobcast = s.nobcast;
    this.setTable(s.unicast, s.multicast);
  }
}
