/**
 * virtio-console for the inspector: struct virtio_console_config decoded (§5.3.4), control
 * messages (§5.3.6.2) and port data for the timeline. Read-only and never throws.
 */
import type { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { readableBytes, writtenBytes, type Decoded, type RequestDecoder } from '../../virtio/inspect/timeline.ts';
import type { ConfigField } from '../../virtio/inspect/types.ts';
import type { DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import { configField as field } from '../config-field.ts';
import type { VirtioConsole } from './console.ts';
import { parseControl } from './control.ts';
import { CONTROL_EVENT_NAMES, CONTROL_SIZE, ConsoleControl as C, queueRole } from './spec.ts';

/** Bytes of port data shown in a timeline entry. */
const PREVIEW_BYTES = 48;
/** Longest PORT_NAME name decoded. */
const NAME_BYTES = 128;

/** Printable ASCII as is, anything else as \xNN (NUL, CR, LF included: one line per entry). */
function preview(bytes: Uint8Array, total: number): string {
  let out = '';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return total > bytes.length ? `${out}…` : out;
}

function control(bytes: Uint8Array): Decoded | undefined {
  const msg = parseControl(bytes);
  if (!msg) return { detail: `short control message (${bytes.length} B)` };
  const event = CONTROL_EVENT_NAMES[msg.event] ?? `event ${msg.event}`;
  const name = msg.event === C.VIRTIO_CONSOLE_PORT_NAME && bytes.length > CONTROL_SIZE ? preview(bytes.subarray(CONTROL_SIZE), bytes.length - CONTROL_SIZE) : undefined;
  return {
    detail: `${event} port ${msg.id} value ${msg.value}${name ? ` "${name}"` : ''}`,
    fields: { event, port: msg.id, value: msg.value, ...(name ? { name } : {}) },
  };
}

function data(bytes: Uint8Array, total: number, port: number, what: string): Decoded {
  return { detail: `port ${port} ${what} ${total} B: ${preview(bytes, total)}`, fields: { port, bytes: total } };
}

export const consoleDecoder: RequestDecoder = {
  popped(mem: GuardedMemory, queue: number, chain: DescriptorChain) {
    const role = queueRole(queue);
    if (role.kind === 'control-tx') return control(readableBytes(mem, chain, Math.min(chain.readableLength, CONTROL_SIZE)));
    if (role.kind === 'tx') return data(readableBytes(mem, chain, Math.min(chain.readableLength, PREVIEW_BYTES)), chain.readableLength, role.port, 'guest →');
    return { detail: `buffer posted · ${chain.writableLength} B` };
  },
  completed(mem: GuardedMemory, queue: number, chain: DescriptorChain | undefined, len: number) {
    const role = queueRole(queue);
    if (!chain || role.kind === 'control-tx' || role.kind === 'tx') return undefined;
    if (len === 0) return { detail: 'returned empty' };
    if (role.kind === 'control-rx') return control(writtenBytes(mem, chain, Math.min(len, CONTROL_SIZE + NAME_BYTES)));
    return data(writtenBytes(mem, chain, Math.min(len, PREVIEW_BYTES)), len, role.port, '→ guest');
  },
};

export function consoleConfigFields(device: VirtioConsole): ConfigField[] {
  const c = device.config;
  const ports = device.ports.map((p) => `${p.id}: ${p.name ?? 'console (hvc)'}${p.guestOpen ? ' (open)' : p.ready ? '' : ' (not ready)'}`);
  return [
    field('cols', c.cols, '5.3.4'),
    field('rows', c.rows, '5.3.4'),
    field('max_nr_ports', c.maxNrPorts, '5.3.4'),
    field('ports', ports.join(', '), '5.3.6.2'),
  ];
}
