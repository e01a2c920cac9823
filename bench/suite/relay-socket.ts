/** The relay's WebSocket as the load generators open it: binary frames, no compression, no masking pass. */
import { WebSocket } from 'ws';

/**
 * Opens `url` and hands the open socket to `wrap` inside the 'open' event, so whatever
 * `wrap` attaches sees every message; rejects on an HTTP refusal or an error before open.
 * After open, errors are left to the 'close' the socket emits next.
 */
export function openRelaySocket<T>(url: string, wrap: (ws: WebSocket) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    // A zero mask (RFC 6455 allows any key) spares the load generator the masking pass.
    const ws = new WebSocket(url, { perMessageDeflate: false, generateMask: (m) => void m.fill(0) });
    ws.binaryType = 'nodebuffer';
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.on('error', () => undefined);
      resolve(wrap(ws));
    });
  });
}
