/**
 * The writer's side of write-behind: serves a port's messages against a synchronous
 * BlockBackend, one at a time and in order (see protocol.ts). Runs in the writer worker on an
 * OPFS handle, and in tests on any backend over a MessageChannel.
 */
import { BlockBackendError, type BlockBackend } from '../block-backend.ts';
import type { ToWriter, WriterDone, WriterFailure } from './protocol.ts';

/** The parts of a MessagePort or worker scope the writer uses (handler method-style: bivariant). */
export interface WriterEndpoint {
  postMessage(message: WriterDone, transfer?: Transferable[]): void;
  onmessage: { bivarianceHack(event: { data: ToWriter }): void }['bivarianceHack'] | null;
  close?(): void;
}

function failure(error: unknown): WriterFailure {
  if (error instanceof BlockBackendError) return { kind: error.kind, message: error.message };
  return { kind: 'io', message: error instanceof Error ? error.message : String(error) };
}

/**
 * A message names at most WRITE_BATCH_BYTES of runs inside its own buffer; runs outside it
 * or outside the disk are refused as a whole (the cache never sends them: a bug, not I/O).
 */
function runBytes(runs: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < runs.length; i += 2) n += runs[i]!;
  return n;
}

function checkRuns(buffer: ArrayBuffer, runs: readonly number[], size: number): string | undefined {
  if (runs.length % 2 !== 0) return 'odd run list';
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const offset = runs[i]!;
    const length = runs[i + 1]!;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > size) {
      return `run [${offset}, +${length}) is outside the ${size}-byte disk`;
    }
    at += length;
    if (at > buffer.byteLength) return `runs need ${at} bytes, the buffer has ${buffer.byteLength}`;
  }
  return undefined;
}

/**
 * Bytes stored since the last fdatasync past which the writer syncs on its own once it has
 * been idle for SYNC_BEHIND_IDLE_MS. The host keeps written pages dirty in its page cache, so
 * a FLUSH at the end of scattered writes waited for all of them at once (~120 ms after 2 s of
 * random 4 KiB writes); synced while the writer has nothing else to do, the wait is ~30 ms.
 * Only when idle: syncing inside a stream (1 GB/s) held the writer up for the host disk's
 * pace and cut the stream to a third (measured: 300 against 790 MB/s).
 */
export const SYNC_BEHIND_BYTES = 8 << 20;
export const SYNC_BEHIND_IDLE_MS = 10;

export function serveWriter(port: WriterEndpoint, medium: BlockBackend, opts: { syncBehindBytes?: number; idleMs?: number } = {}): void {
  const syncBehindBytes = opts.syncBehindBytes ?? SYNC_BEHIND_BYTES;
  const idleMs = opts.idleMs ?? SYNC_BEHIND_IDLE_MS;
  /** A write failed since the last flush: that flush must fail too (the write is not durable). */
  let failedSinceFlush: WriterFailure | undefined;
  let closed = false;
  let storedSinceSync = 0;
  let idleSync: ReturnType<typeof setTimeout> | undefined;
  /** Host ms of syncs of our own, reported with the next answer. */
  let backgroundMs = 0;
  const syncWhenIdle = () => {
    idleSync = undefined;
    if (closed || storedSinceSync < syncBehindBytes) return;
    const before = medium.mediumMs ?? 0;
    const t0 = performance.now();
    try {
      medium.flush();
      storedSinceSync = 0;
    } catch {
      // Not asked for: the next FLUSH syncs again and reports what fails then.
    }
    backgroundMs += medium.mediumMs === undefined ? performance.now() - t0 : medium.mediumMs - before;
  };
  port.onmessage = ({ data: msg }) => {
    if (closed) return;
    const before = (medium.mediumMs ?? 0) - backgroundMs;
    backgroundMs = 0;
    const t0 = performance.now();
    const elapsed = () => (medium.mediumMs === undefined ? performance.now() - t0 : medium.mediumMs - before);
    switch (msg.type) {
      case 'write': {
        let error: WriterFailure | undefined;
        const bad = checkRuns(msg.buffer, msg.runs, medium.size);
        if (bad) error = { kind: 'range', message: bad };
        else {
          let at = 0;
          try {
            for (let i = 0; i < msg.runs.length; i += 2) {
              const length = msg.runs[i + 1]!;
              medium.write(msg.runs[i]!, new Uint8Array(msg.buffer, at, length));
              at += length;
            }
          } catch (e) {
            error = failure(e);
          }
        }
        if (error) failedSinceFlush ??= error;
        else storedSinceSync += runBytes(msg.runs);
        // Idle: no message for SYNC_BEHIND_IDLE_MS (every message restarts the wait).
        if (idleSync !== undefined) clearTimeout(idleSync);
        idleSync = storedSinceSync >= syncBehindBytes ? setTimeout(syncWhenIdle, idleMs) : undefined;
        port.postMessage({ type: 'done', seq: msg.seq, buffer: msg.buffer, ms: elapsed(), error }, [msg.buffer]);
        break;
      }
      case 'flush':
      case 'close': {
        let error = failedSinceFlush;
        failedSinceFlush = undefined;
        if (!error) {
          try {
            medium.flush();
            storedSinceSync = 0;
          } catch (e) {
            error = failure(e);
          }
        }
        if (msg.type === 'close') {
          closed = true;
          try {
            medium.close();
          } catch (e) {
            error ??= failure(e);
          }
        }
        port.postMessage({ type: 'done', seq: msg.seq, ms: elapsed(), error });
        if (closed) port.close?.();
        break;
      }
    }
  };
}
