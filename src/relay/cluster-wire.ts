/**
 * What relays of a cluster say to each other over NATS, and the checks on what they hear.
 * Another relay is a peer, not a trusted part of this process: every message is bounded and
 * validated before it touches a room.
 *
 * Subjects (room names are hex-encoded: a room may contain '.', NATS's token separator):
 * - `vlab.frame.<roomHex>.all`: a frame flooded in the room (broadcast, multicast, unknown unicast);
 * - `vlab.frame.<roomHex>.<relayId>`: a frame for a MAC last seen on that relay;
 * - `vlab.ctl`: heartbeats and departures (JSON, below).
 * A frame message is a batch: 1 version byte, the sending relay's 8-byte id, then up to
 * MAX_BATCH_FRAMES × (u16 length, Ethernet frame). A relay batches what one turn of its event
 * loop sends to one subject: each NATS message costs a write and a read on both ends, and one
 * per frame made two relays spend 60 % of a core on 1300 frames/s (`npm run bench:relay`).
 */
export const WIRE_VERSION = 2;
/** A batch is sent once it holds this many bytes of frames, or this many frames. */
export const MAX_BATCH_BYTES = 32 * 1024;
export const MAX_BATCH_FRAMES = 64;
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

export function encodeBatch(relayId: Uint8Array, frames: readonly Uint8Array[]): Uint8Array {
  let n = HEADER;
  for (const f of frames) n += 2 + f.length;
  const out = new Uint8Array(n);
  out[0] = WIRE_VERSION;
  out.set(relayId, 1);
  let at = HEADER;
  for (const f of frames) {
    out[at] = f.length >>> 8;
    out[at + 1] = f.length & 0xff;
    out.set(f, at + 2);
    at += 2 + f.length;
  }
  return out;
}

/**
 * The sender's id and copies of its frames, or a reason to drop the whole message: a batch
 * that is too long, holds too many frames, or one whose lengths do not tile it exactly.
 */
export function decodeBatch(msg: Uint8Array, maxFrameBytes: number): { from: string; frames: Uint8Array[] } | { drop: string } {
  if (msg.length < HEADER + 2 + 14) return { drop: 'runt' };
  if (msg.length > HEADER + MAX_BATCH_BYTES + 2 + maxFrameBytes) return { drop: 'too-big' };
  if (msg[0] !== WIRE_VERSION) return { drop: 'version' };
  const frames: Uint8Array[] = [];
  let at = HEADER;
  while (at < msg.length) {
    if (frames.length >= MAX_BATCH_FRAMES) return { drop: 'too-many' };
    if (at + 2 > msg.length) return { drop: 'malformed' };
    const len = (msg[at] << 8) | msg[at + 1];
    if (len < 14 || len > maxFrameBytes || at + 2 + len > msg.length) return { drop: 'malformed' };
    frames.push(msg.slice(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return { from: Buffer.from(msg.subarray(1, HEADER)).toString('hex'), frames };
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
