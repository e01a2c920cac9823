/**
 * Wisp v1 packets (TCP and UDP streams multiplexed over one WebSocket, one packet per binary
 * message): u8 type, u32 LE stream id, then the payload. CONNECT: u8 stream type, u16 LE
 * port, hostname (UTF-8, the rest). DATA: the bytes. CONTINUE: u32 LE buffer remaining (the
 * server's flow control: how many DATA packets the client may still send on the stream).
 * CLOSE: u8 reason.
 */
export const WISP_CONNECT = 0x01;
export const WISP_DATA = 0x02;
export const WISP_CONTINUE = 0x03;
export const WISP_CLOSE = 0x04;

export const WISP_STREAM_TCP = 0x01;
export const WISP_STREAM_UDP = 0x02;

export const WISP_CLOSE_UNSPECIFIED = 0x01;
export const WISP_CLOSE_VOLUNTARY = 0x02;
export const WISP_CLOSE_NETWORK_ERROR = 0x03;
export const WISP_CLOSE_INVALID = 0x41;
export const WISP_CLOSE_UNREACHABLE = 0x42;
export const WISP_CLOSE_TIMEOUT = 0x43;
export const WISP_CLOSE_REFUSED = 0x44;
export const WISP_CLOSE_BLOCKED = 0x48;
export const WISP_CLOSE_THROTTLED = 0x49;

/** Longest hostname a CONNECT may carry (DNS names are at most 253 characters). */
export const WISP_MAX_HOSTNAME = 253;

export type WispPacket =
  | { type: typeof WISP_CONNECT; streamId: number; streamType: number; port: number; hostname: string }
  | { type: typeof WISP_DATA; streamId: number; data: Uint8Array }
  | { type: typeof WISP_CONTINUE; streamId: number; bufferRemaining: number }
  | { type: typeof WISP_CLOSE; streamId: number; reason: number };

const HEADER = 5;

function header(type: number, streamId: number, payloadLength: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(HEADER + payloadLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, type);
  view.setUint32(1, streamId >>> 0, true);
  return { bytes, view };
}

export function encodeWisp(p: WispPacket): Uint8Array {
  switch (p.type) {
    case WISP_CONNECT: {
      const name = new TextEncoder().encode(p.hostname);
      const { bytes, view } = header(p.type, p.streamId, 3 + name.length);
      view.setUint8(5, p.streamType);
      view.setUint16(6, p.port, true);
      bytes.set(name, 8);
      return bytes;
    }
    case WISP_DATA: {
      const { bytes } = header(p.type, p.streamId, p.data.length);
      bytes.set(p.data, HEADER);
      return bytes;
    }
    case WISP_CONTINUE: {
      const { bytes, view } = header(p.type, p.streamId, 4);
      view.setUint32(5, p.bufferRemaining >>> 0, true);
      return bytes;
    }
    case WISP_CLOSE: {
      const { bytes, view } = header(p.type, p.streamId, 1);
      view.setUint8(5, p.reason);
      return bytes;
    }
  }
}

/** A packet from the peer, or an Error saying why it is not one (the caller drops the link). */
export function decodeWisp(b: Uint8Array): WispPacket | Error {
  if (b.length < HEADER) return new Error(`wisp packet of ${b.length} bytes`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = view.getUint8(0);
  const streamId = view.getUint32(1, true);
  const rest = b.subarray(HEADER);
  switch (type) {
    case WISP_CONNECT: {
      if (rest.length < 3 || rest.length - 3 > WISP_MAX_HOSTNAME) return new Error('bad wisp CONNECT');
      let hostname: string;
      try {
        hostname = new TextDecoder('utf-8', { fatal: true }).decode(rest.subarray(3));
      } catch {
        return new Error('wisp CONNECT hostname is not UTF-8');
      }
      return { type, streamId, streamType: view.getUint8(5), port: view.getUint16(6, true), hostname };
    }
    case WISP_DATA:
      return { type, streamId, data: rest };
    case WISP_CONTINUE:
      if (rest.length !== 4) return new Error('bad wisp CONTINUE');
      return { type, streamId, bufferRemaining: view.getUint32(5, true) };
    case WISP_CLOSE:
      if (rest.length !== 1) return new Error('bad wisp CLOSE');
      return { type, streamId, reason: view.getUint8(5) };
    default:
      return new Error(`unknown wisp packet type ${type}`);
  }
}

/** A CLOSE reason for people. */
export function wispCloseText(reason: number): string {
  switch (reason) {
    case WISP_CLOSE_VOLUNTARY:
      return 'closed';
    case WISP_CLOSE_NETWORK_ERROR:
      return 'network error';
    case WISP_CLOSE_INVALID:
      return 'invalid connection info';
    case WISP_CLOSE_UNREACHABLE:
      return 'unreachable';
    case WISP_CLOSE_TIMEOUT:
      return 'timed out';
    case WISP_CLOSE_REFUSED:
      return 'connection refused';
    case WISP_CLOSE_BLOCKED:
      return 'blocked by the server';
    case WISP_CLOSE_THROTTLED:
      return 'throttled';
    default:
      return `reason 0x${reason.toString(16)}`;
  }
}
