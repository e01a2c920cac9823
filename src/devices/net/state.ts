/**
 * virtio-net's part of a VM snapshot (see virtio/state/device-state.ts): the link status the
 * driver saw, the rx chains the device holds (popped for a frame that needs more buffers than
 * were posted), and the frames waiting for rx buffers, so the guest receives exactly what it
 * would have. A quiesced device has no transmit pass pending; counters restart from zero.
 *
 * Restored: the MAC is the new options' (the lab gives a restored guest its own address and
 * changes it in the guest itself), with no config change for it; MTU and the rest of the
 * config must match. A link whose state differs now reports the change as a flap would.
 *
 * `ctrl` (added with the control queue; a state without it loads with the power-on filter and
 * the negotiated offloads): the receive filter and the guest offloads the driver set. The
 * announce a restored guest owes its peers is asked for after the restore (lab-devices-state.ts,
 * announceRestoredGuest), so that a restored state saves back unchanged.
 */
import type { DeviceStateHooks } from '../../virtio/state/device-state.ts';
import { bytesToBase64 } from '../../virtio/state/base64.ts';
import { ETH_HLEN, maxFrameLength } from '../../wire/ethernet.ts';
import { LRO_MAX_FRAME } from './rx-lro.ts';
import { checkSuperSegment } from './rx-super.ts';
import { NET_CONFIG_SIZE, NetConfigOffset, formatMac, parseMac } from './config.ts';
import { MAC_TABLE_ENTRIES } from './ctrl-budget.ts';
import type { MacList } from './ctrl-command.ts';
import type { RxFilterState } from './ctrl-filter.ts';
import { GUEST_OFFLOAD_BITS } from './ctrl.ts';
import { hex64, type StateReader } from '../../virtio/state/state-reader.ts';
import type { VirtioNet } from './net.ts';
import { NET_RECEIVEQ, VIRTIO_NET_S_LINK_UP } from './spec.ts';

/** Config bytes a restore does not compare: the MAC (the new one stays) and status (the saved one comes back). */
function restoredByte(offset: number): boolean {
  return offset < NetConfigOffset.MAC + 6 || (offset >= NetConfigOffset.STATUS && offset < NetConfigOffset.STATUS + 2);
}

const RX_MODES = ['promisc', 'allmulti', 'alluni', 'nomulti', 'nouni', 'nobcast'] as const;

function saveControl(net: VirtioNet) {
  const f = net.control.filter.state;
  const list = (l: MacList) => ({ macs: l.macs.map(formatMac), overflow: l.overflow });
  return { ...Object.fromEntries(RX_MODES.map((m) => [m, f[m]])), unicast: list(f.unicast), multicast: list(f.multicast), offloads: hex64(net.guestOffloads) };
}

/** The saved filter and offloads, checked: at most MAC_TABLE_ENTRIES addresses per list, offloads this NIC offers. */
function readControl(net: VirtioNet, r: StateReader): { filter: RxFilterState; offloads: bigint } {
  const list = (l: StateReader): MacList => ({
    macs: l
      .at('macs')
      .items(MAC_TABLE_ENTRIES)
      .map((m) => {
        const text = m.string(17);
        try {
          return parseMac(text);
        } catch {
          return m.fail(`"${text}" is not a MAC address`);
        }
      }),
    overflow: l.at('overflow').bool(),
  });
  const modes = Object.fromEntries(RX_MODES.map((m) => [m, r.at(m).bool()])) as Record<(typeof RX_MODES)[number], boolean>;
  const offloads = r.at('offloads').u64();
  const allowed = net.deviceFeatures & GUEST_OFFLOAD_BITS;
  if (offloads & ~allowed) r.at('offloads').fail(`0x${offloads.toString(16)} names offloads this NIC does not offer (0x${allowed.toString(16)})`);
  return { filter: { ...modes, unicast: list(r.at('unicast')), multicast: list(r.at('multicast')) }, offloads };
}

export const netState: DeviceStateHooks<VirtioNet> = {
  busy: (net) => net.outstandingWork,
  quiesce: (net) => net.settleNow(),
  save: (net) => ({
    config: bytesToBase64(net.config.space.bytes),
    rxHeld: net.heldRxChains.map((chain) => chain.headIndex),
    rxBacklog: net.rxBacklog.map(bytesToBase64),
    ctrl: saveControl(net),
  }),
  restore(net, state, host) {
    const field = state.at('config');
    const config = field.bytes(NET_CONFIG_SIZE);
    if (config.length !== NET_CONFIG_SIZE) field.fail(`${config.length} bytes, virtio_net_config has ${NET_CONFIG_SIZE}`);
    const now = net.config.space.bytes;
    for (let i = 0; i < NET_CONFIG_SIZE; i++) {
      if (!restoredByte(i) && config[i] !== now[i]) field.fail(`byte ${i} is ${config[i]}, this NIC's is ${now[i]}: saved with another MTU`);
    }
    const linkUp = (new DataView(config.buffer, config.byteOffset).getUint16(NetConfigOffset.STATUS, true) & VIRTIO_NET_S_LINK_UP) !== 0;

    // At most a queue's worth of chains can be held, and the backlog's bounds hold for its frames.
    const held = state
      .at('rxHeld')
      .items(net.queueMaxSizes[NET_RECEIVEQ]!)
      .flatMap((id) => host.takeChain(NET_RECEIVEQ, id.int(0, 0xffff)) ?? []);
    const limits = net.rxBacklogLimits;
    let bytes = 0;
    const frames = state
      .at('rxBacklog')
      .items(limits.frames)
      .map((item) => {
        // A super-segment from the link may wait too (rx-super.ts).
        const frame = item.bytes(LRO_MAX_FRAME);
        const oversized = frame.length > maxFrameLength(frame, net.mtu);
        if (frame.length < ETH_HLEN || (oversized && typeof checkSuperSegment(frame, net.mtu) === 'string')) item.fail(`a ${frame.length}-byte frame the NIC would not have taken`);
        bytes += frame.length;
        return frame;
      });
    if (bytes > limits.bytes) state.at('rxBacklog').fail(`${bytes} bytes, the backlog holds at most ${limits.bytes}`);
    const ctrlField = state.optional('ctrl');
    const control = ctrlField && readControl(net, ctrlField);
    return () => {
      net.restoreReceive(linkUp, held, frames);
      if (control) {
        net.control.filter.setState(control.filter);
        net.control.restoreOffloads(control.offloads);
      }
    };
  },
};
