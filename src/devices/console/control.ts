/**
 * struct virtio_console_control (§5.3.6.2): fixed 8 bytes, optionally followed by a payload
 * (PORT_NAME's name). Parsing reads exactly the fixed part; whatever follows is the caller's.
 */
import { CONTROL_SIZE } from './spec.ts';

export interface ControlMessage {
  /** Port number (DEVICE_READY ignores it). */
  readonly id: number;
  readonly event: number;
  readonly value: number;
}

/** The message at the start of `bytes`, or undefined if fewer than 8 bytes arrived. */
export function parseControl(bytes: Uint8Array): ControlMessage | undefined {
  if (bytes.length < CONTROL_SIZE) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, CONTROL_SIZE);
  return { id: dv.getUint32(0, true), event: dv.getUint16(4, true), value: dv.getUint16(6, true) };
}

export function encodeControl(msg: ControlMessage, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONTROL_SIZE + (payload?.length ?? 0));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, msg.id, true);
  dv.setUint16(4, msg.event, true);
  dv.setUint16(6, msg.value, true);
  if (payload) out.set(payload, CONTROL_SIZE);
  return out;
}
