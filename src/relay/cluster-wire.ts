/**
 * What relays of a cluster say to each other over NATS, and the checks on what they hear.
 * Another relay is a peer, not a trusted part of this process: every message is bounded and
 * validated before it touches a room.
 *
 * Subjects (room names are hex-encoded: a room may contain '.', NATS's token separator):
 * - `vlab.frame.<roomHex>.all`: a frame flooded in the room (broadcast, multicast, unknown unicast);
 * - `vlab.frame.<roomHex>.<relayId>`: a frame for a MAC last seen on that relay;
 * - `vlab.ctl`: heartbeats and departures (JSON, below).
 * A frame message is 1 version byte, the sending relay's 8-byte id, then the Ethernet frame.
 */
export const WIRE_VERSION = 1;
export const RELAY_ID_BYTES = 8;
const HEADER = 1 + RELAY_ID_BYTES;
/** Control messages are tiny; anything longer is not ours. */
export const MAX_CONTROL_BYTES = 512;

const RELAY_ID = /^[0-9a-f]{16}$/;
const ROOM_HEX = /^(?:[0-9a-f]{2}){1,64}$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

export const roomHex = (room: string) => Buffer.from(room, 'utf8').toString('hex');
export const frameSubject = (room: string, to: string | 'all') => `vlab.frame.${roomHex(room)}.${to}`;
export const CONTROL_SUBJECT = 'vlab.ctl';

export function encodeFrame(relayId: Uint8Array, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + frame.length);
  out[0] = WIRE_VERSION;
  out.set(relayId, 1);
  out.set(frame, HEADER);
  return out;
}

/** The sender's id and a copy of the frame, or a reason to drop the message. */
export function decodeFrame(msg: Uint8Array, maxFrameBytes: number): { from: string; frame: Uint8Array } | { drop: string } {
  if (msg.length < HEADER + 14) return { drop: 'runt' };
  if (msg.length > HEADER + maxFrameBytes) return { drop: 'too-big' };
  if (msg[0] !== WIRE_VERSION) return { drop: 'version' };
  return { from: Buffer.from(msg.subarray(1, HEADER)).toString('hex'), frame: msg.slice(HEADER) };
}

export type ControlMessage =
  /** "I am alive": sent every heartbeat interval. */
  | { t: 'hb'; relay: string }
  /** A client left this relay: forget its MAC in that room. */
  | { t: 'left'; relay: string; room: string; mac: string }
  /** This relay is shutting down: forget every MAC learned from it. */
  | { t: 'bye'; relay: string };

export function encodeControl(m: ControlMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m.t === 'left' ? { ...m, room: roomHex(m.room) } : m));
}

/** A control message from a peer, or null when it is not one we accept. */
export function decodeControl(msg: Uint8Array): ControlMessage | null {
  if (msg.length > MAX_CONTROL_BYTES) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(msg));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.relay !== 'string' || !RELAY_ID.test(o.relay)) return null;
  if (o.t === 'hb' || o.t === 'bye') return { t: o.t, relay: o.relay };
  if (o.t === 'left' && typeof o.room === 'string' && ROOM_HEX.test(o.room) && typeof o.mac === 'string' && MAC.test(o.mac)) {
    const room = new TextDecoder('utf-8', { fatal: false }).decode(Buffer.from(o.room, 'hex'));
    return { t: 'left', relay: o.relay, room, mac: o.mac };
  }
  return null;
}
