/**
 * virtio-console's part of a VM snapshot (see virtio/state/device-state.ts): where the control
 * protocol stands (DEVICE_READY seen, messages waiting for control buffers) and each port as
 * the driver set it up — ready, open in the guest — with the host's bytes still waiting for
 * receive buffers. The guest's open ports stay open on the device side, so run()'s agent keeps
 * working after a restore. A quiesced device has no deferred drain pending and holds no chain
 * (receive buffers are filled as they are popped). Counters restart from zero.
 *
 * Restored into a console with the same ports (same names, same order) and the same config.
 */
import type { DeviceStateHooks } from '../../virtio/state/device-state.ts';
import { bytesToBase64 } from '../../virtio/state/base64.ts';
import { CONSOLE_CONFIG_SIZE } from './config.ts';
import { MAX_PENDING_CONTROL, type VirtioConsole } from './console.ts';
import { CONTROL_SIZE } from './spec.ts';

/** The longest control message the device sends: PORT_NAME with a 127-byte name. */
const MAX_CONTROL_MESSAGE = CONTROL_SIZE + 127;
/** Port names are at most 127 characters (console.ts). */
const MAX_PORT_NAME = 127;

export const consoleState: DeviceStateHooks<VirtioConsole> = {
  busy: (con) => con.outstandingWork,
  quiesce: (con) => con.settleNow(),
  save: (con) => ({
    config: bytesToBase64(con.config.space.bytes),
    deviceReady: con.controlState.deviceReady,
    controlPending: con.controlState.pending.map(bytesToBase64),
    ports: con.ports.map((port) => ({
      name: port.name ?? null,
      ready: port.ready,
      guestOpen: port.guestOpen,
      backlog: bytesToBase64(port.backlog.peekAll()),
    })),
  }),
  restore(con, state, host) {
    const field = state.at('config');
    const config = field.bytes(CONSOLE_CONFIG_SIZE);
    const now = con.config.space.bytes;
    if (config.length !== now.length || config.some((b, i) => b !== now[i])) field.fail('differs from this console\'s (other size or number of ports)');
    const deviceReady = state.at('deviceReady').bool();
    const controlPending = state
      .at('controlPending')
      .items(MAX_PENDING_CONTROL)
      .map((item) => {
        const msg = item.bytes(MAX_CONTROL_MESSAGE);
        if (msg.length < CONTROL_SIZE) item.fail(`a ${msg.length}-byte control message, at least ${CONTROL_SIZE}`);
        return msg;
      });
    const saved = state.at('ports').items(con.ports.length);
    if (saved.length !== con.ports.length) state.at('ports').fail(`${saved.length} ports, this console has ${con.ports.length}`);
    const ports = saved.map((p, id) => {
      const port = con.ports[id];
      const name = p.optional('name')?.string(MAX_PORT_NAME);
      if (name !== port.name) p.at('name').fail(`port ${id} was ${JSON.stringify(name ?? null)}, here it is ${JSON.stringify(port.name ?? null)}`);
      return { ready: p.at('ready').bool(), guestOpen: p.at('guestOpen').bool(), backlog: p.at('backlog').bytes(port.backlog.maxBytes) };
    });
    return () => con.restorePorts(deviceReady, controlPending, ports, (job) => host.whenRestored(job));
  },
};
