/**
 * Messages between a WriteBehindCache (the VM worker) and its writer (a worker of its own
 * that holds a second handle on the same disk file). One port, in order: the writer serves
 * each message to the end before the next, so the medium sees writes, zeroes and flushes in
 * the order they were posted, and a flush covers every write posted before it.
 */
import type { BlockBackendErrorKind } from '../block-backend.ts';

/** Largest batch of blocks in one `write` message (its buffer's size). */
export const WRITE_BATCH_BYTES = 1 << 20;

export type ToWriter =
  /** Store `runs` (pairs: disk offset, length), packed one after another from the buffer's start. */
  | { type: 'write'; seq: number; buffer: ArrayBuffer; runs: number[] }
  /** Make every write posted so far durable (fdatasync); fails if any of them failed. */
  | { type: 'flush'; seq: number }
  /** Flush, then release the medium; the writer serves nothing afterwards. */
  | { type: 'close'; seq: number };

export interface WriterFailure {
  kind: BlockBackendErrorKind;
  message: string;
}

export interface WriterDone {
  type: 'done';
  seq: number;
  /** A write's buffer, handed back for the next batch. */
  buffer?: ArrayBuffer;
  /** Host ms the writer spent inside the medium's calls for this message. */
  ms: number;
  error?: WriterFailure;
}

/** What opens the writer's worker: the disk to hold. */
export interface OpenWriter {
  type: 'open';
  disk: string;
}

export type WriterOpened = { type: 'opened' } | { type: 'open-failed'; message: string };
