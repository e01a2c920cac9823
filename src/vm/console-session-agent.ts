/**
 * run() over the virtio-console port "org.virtio-lab.run", where the guest agent
 * (guest/rootfs/usr/sbin/virtio-lab-agent) runs each command in a fresh `sh`. Nothing of it
 * reaches the serial console, and output moves at the port's speed, not the UART's.
 *
 * Requests (host → guest), one message per line: `L<line>` for each line of the command,
 * `X<id>` to run it (`F<id>`: in a subshell of the agent, LabRunOptions.subshell), `K<id>` to
 * cancel it. Replies (guest → host): NUL `__VL_S<id>` LF, the
 * command's stdout+stderr bytes, NUL `__VL_E<id>:<status>` LF. Ids are unique per request
 * and carry a random session tag, so a marker cannot be faked by accident and bytes from an
 * earlier (cancelled) request are never taken for the current one: everything before the
 * current request's start marker is dropped.
 */
import type { RunResult } from './console-session.ts';

/** The port's name: the guest agent looks for it in /sys/class/virtio-ports/*\/name. */
export const AGENT_PORT = 'org.virtio-lab.run';

/** A command's output past this is refused (the run rejects and the command is cancelled). */
export const MAX_AGENT_OUTPUT = 64 * 1024 * 1024;

const enc = new TextEncoder();

/**
 * Output bytes → string, losslessly: UTF-8 where the bytes are valid UTF-8 (so text reads as
 * text, as over the serial console), and each byte that is not part of a valid sequence as
 * the lone surrogate U+DC80–U+DCFF (0xDC00 + byte, "surrogateescape"), which valid UTF-8 can
 * never produce. `outputBytes` inverts it.
 */
export function decodeOutput(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    /* not all valid: decode run by run below */
  }
  const text = new TextDecoder('utf-8', { ignoreBOM: true });
  let out = '';
  let runStart = 0;
  let i = 0;
  while (i < bytes.length) {
    const n = utf8SequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    if (i > runStart) out += text.decode(bytes.subarray(runStart, i));
    out += String.fromCharCode(0xdc00 + bytes[i]);
    i++;
    runStart = i;
  }
  if (i > runStart) out += text.decode(bytes.subarray(runStart, i));
  return out;
}

/** Length of the valid UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF), or 0. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** The bytes a run() output string stands for (the inverse of decodeOutput). */
export function outputBytes(output: string): Uint8Array {
  const parts: number[] = [];
  let run = '';
  for (const ch of output) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && code >= 0xdc80 && code <= 0xdcff) {
      if (run) parts.push(...enc.encode(run));
      run = '';
      parts.push(code - 0xdc00);
    } else {
      run += ch;
    }
  }
  if (run) parts.push(...enc.encode(run));
  return Uint8Array.from(parts);
}

/** The request bytes for one command (exported for tests). */
export function encodeRequest(cmd: string, id: string, subshell = false): Uint8Array {
  let text = '';
  for (const line of cmd.split('\n')) text += `L${line}\n`;
  return enc.encode(`${text}${subshell ? 'F' : 'X'}${id}\n`);
}

const LF = 0x0a;
/** Digits of the status in an end marker at most: the agent prints an exit status, 0–255. */
const MAX_STATUS_DIGITS = 3;

/** A growable byte buffer (the output of the request being collected). */
class ByteBuffer {
  bytes = new Uint8Array(4096);
  length = 0;
  append(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (size < this.length + chunk.length) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.bytes.subarray(0, this.length));
      this.bytes = bigger;
    }
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }
  /** Drop the first `n` bytes. */
  consume(n: number): void {
    this.bytes.copyWithin(0, n, this.length);
    this.length -= n;
  }
  clear(): void {
    this.length = 0;
    if (this.bytes.length > 1 << 20) this.bytes = new Uint8Array(4096);
  }
}

/** Where `marker` starts in `buf` at or after `from`, or -1. */
function find(buf: ByteBuffer, marker: Uint8Array, from: number): number {
  // Only the filled part: past it lie stale bytes of earlier output, which indexOf would
  // scan to the end of the buffer on every chunk (a megabyte per chunk after a 1 MB run).
  const b = buf.bytes.subarray(0, buf.length);
  const last = buf.length - marker.length;
  for (let i = b.indexOf(marker[0], from); i >= 0 && i <= last; i = b.indexOf(marker[0], i + 1)) {
    let k = 1;
    while (k < marker.length && b[i + k] === marker[k]) k++;
    if (k === marker.length) return i;
  }
  return -1;
}

interface Pending {
  id: string;
  start: Uint8Array;
  end: Uint8Array;
  started: boolean;
  /** Where to resume the marker search in `buf`. */
  searchFrom: number;
  resolve(r: RunResult): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The host end of the agent's port. The session decides when to use it (`open`); one
 * request at a time (the session queues them).
 */
export class AgentChannel {
  private isOpen = false;
  private pending: Pending | undefined;
  /** Bytes since the last start-marker search or of the current output. */
  private readonly buf = new ByteBuffer();
  /** Bytes that arrived outside any request (late output of cancelled ones, agent noise). */
  strayBytes = 0;

  /** `write` sends bytes to the guest; false means the port refused them (backlog full). */
  constructor(private readonly write: (bytes: Uint8Array) => boolean) {}

  get open(): boolean {
    return this.isOpen;
  }

  /** A guest process (the agent) opened or closed the port. */
  setOpen(open: boolean): void {
    this.isOpen = open;
    if (!open) this.abort(new Error('the guest closed the run() port (agent gone or device reset)'));
  }

  /** The machine is gone: reject what is pending. */
  fail(err: Error): void {
    this.isOpen = false;
    this.abort(err);
  }

  private abort(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    this.buf.clear();
    p.reject(err);
  }

  run(cmd: string, id: string, timeoutMs: number, subshell = false): Promise<RunResult> {
    if (this.pending) return Promise.reject(new Error('run() over the port: one request at a time'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending?.id !== id) return;
        this.pending = undefined;
        this.buf.clear();
        // Kill it in the guest so the next command runs; its late bytes precede the next start marker.
        this.write(enc.encode(`K${id}\n`));
        reject(new Error(`run(${JSON.stringify(cmd)}) timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        id,
        start: enc.encode(`\0__VL_S${id}\n`),
        end: enc.encode(`\0__VL_E${id}:`),
        started: false,
        searchFrom: 0,
        resolve,
        reject,
        timer,
      };
      this.buf.clear();
      if (!this.write(encodeRequest(cmd, id, subshell))) {
        this.abort(new Error(`run(): the command (${cmd.length} characters) does not fit the port's buffer`));
      }
    });
  }

  /** Bytes from the guest agent. */
  feed(bytes: Uint8Array): void {
    const p = this.pending;
    if (!p) {
      this.strayBytes += bytes.length;
      return;
    }
    this.buf.append(bytes);
    if (!p.started) {
      const at = find(this.buf, p.start, p.searchFrom);
      if (at < 0) {
        // Keep only what could still be the start of the marker.
        const keep = Math.min(this.buf.length, p.start.length - 1);
        this.strayBytes += this.buf.length - keep;
        this.buf.consume(this.buf.length - keep);
        p.searchFrom = 0;
        return;
      }
      this.strayBytes += at;
      this.buf.consume(at + p.start.length);
      p.started = true;
      p.searchFrom = 0;
    }
    // Output may contain the end marker's text: a candidate counts only with 1–3 digits (an
    // exit status is 0–255) and LF after it. A loop, not recursion: a guest can print many.
    const b = this.buf.bytes;
    for (;;) {
      const e = find(this.buf, p.end, p.searchFrom);
      if (e < 0) {
        p.searchFrom = Math.max(0, this.buf.length - p.end.length + 1);
        break;
      }
      const digits = e + p.end.length;
      let i = digits;
      let status = 0;
      for (; i < this.buf.length && i - digits < MAX_STATUS_DIGITS && b[i] >= 0x30 && b[i] <= 0x39; i++) status = status * 10 + (b[i] - 0x30);
      if (i >= this.buf.length) {
        p.searchFrom = e; // the status is still on its way
        break;
      }
      if (b[i] !== LF || i === digits) {
        p.searchFrom = e + 1;
        continue;
      }
      const output = decodeOutput(b.subarray(0, e));
      this.strayBytes += this.buf.length - (i + 1);
      this.pending = undefined;
      this.buf.clear();
      clearTimeout(p.timer);
      p.resolve({ output, status });
      return;
    }
    // Checked on every path that keeps waiting, so output is bounded whatever it contains.
    if (this.buf.length > MAX_AGENT_OUTPUT) {
      this.write(enc.encode(`K${p.id}\n`));
      this.abort(new Error(`run(): output over ${MAX_AGENT_OUTPUT} bytes; the command was cancelled`));
    }
  }
}
