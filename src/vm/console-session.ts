/**
 * A shell session with the guest: the serial console's log so far, "ready" at the first
 * shell prompt, and `run(cmd)` that returns one command's output and exit status.
 *
 * run() goes over the guest agent's virtio-console port when the agent has it open
 * (console-session-agent.ts): nothing appears on the console, output is byte-exact.
 * Otherwise (an image without the agent, no virtio-console, the port closed) it types into
 * the serial shell and brackets the command with markers the guest prints, written so the
 * typed (echoed) line never contains the joined marker ("__VL_S""id" echoes as typed,
 * prints as __VL_Sid). Prompt matching is never used for results.
 */
import { AgentChannel } from './console-session-agent.ts';

/** The line the guest's /init prints just before it starts the shell. */
export const READY_MARKER = 'VIRTIO_LAB_READY';

export interface RunResult {
  output: string;
  status: number;
}

export interface RunOptions {
  timeoutMs?: number;
}

/** Options of the lab's own requests (window.virtioLab.run takes RunOptions only). */
export interface LabRunOptions extends RunOptions {
  /**
   * Over the agent's port: run the command in a subshell of the agent (its `F` request), not
   * in a session with an `sh` of its own: two programs fewer to start, which counts in a
   * guest just restored, whose code v86 has not compiled yet. A timeout ends the subshell,
   * not what it started. Ignored over the serial console.
   */
  subshell?: boolean;
}

/** A shell prompt at the end of the output, maybe followed by terminal queries (ash sends ESC[6n). */
const PROMPT_END = /[#$] (?:\x1b\[[0-9;?]*[A-Za-z])*$/;

interface Waiter {
  test(log: string): boolean;
  fail?(err: Error): void;
}

let sessionSeq = 0;

export class ConsoleSession {
  private text = '';
  private readonly decoder = new TextDecoder();
  private waiters: Waiter[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private seq = 0;
  private readonly tag = `${(++sessionSeq).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  readonly ready: Promise<void>;
  private failReady: (err: Error) => void = () => {};
  private resolveReady: () => void = () => {};
  private failed: Error | undefined;
  private agent: AgentChannel | undefined;

  constructor(
    private readonly send: (text: string) => void,
    /** Bytes of log kept for serialLog(); older output is dropped first. */
    private readonly maxLog = 16 * 1024 * 1024,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.failReady = reject;
      this.resolveReady = resolve;
      this.waiters.push({
        test: (log) => {
          const at = log.lastIndexOf(READY_MARKER);
          // Ready at the prompt that follows the marker.
          if (at < 0 || !PROMPT_END.test(log.slice(at))) return false;
          resolve();
          return true;
        },
      });
    });
    this.ready.catch(() => undefined); // a boot nobody waits on may fail quietly
  }

  /**
   * The guest agent's port: `write` sends it bytes (false: refused). Call `agentOpen` and
   * `agentData` as the port's events arrive; run() uses the port while it is open.
   */
  attachAgent(write: (bytes: Uint8Array) => boolean): void {
    this.agent = new AgentChannel(write);
  }

  agentOpen(open: boolean): void {
    this.agent?.setOpen(open);
  }

  agentData(bytes: Uint8Array): void {
    this.agent?.feed(bytes);
  }

  /** Whether the next run() goes over the agent's port (else the serial console). */
  get usesAgent(): boolean {
    return this.agent?.open ?? false;
  }

  /** The shell is at a prompt already (a restored guest): ready without waiting for the boot's marker. */
  markReady(): void {
    this.resolveReady();
  }

  /** The machine is gone (fatal error, restart): pending and future calls reject with err. */
  fail(err: Error): void {
    this.failed = err;
    this.failReady(err);
    this.agent?.fail(err);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.fail?.(err);
  }

  /** Console output as it arrives. */
  feed(bytes: Uint8Array): void {
    this.text += this.decoder.decode(bytes, { stream: true });
    if (this.text.length > this.maxLog) this.text = this.text.slice(this.text.length - this.maxLog / 2);
    if (this.waiters.length) this.waiters = this.waiters.filter((w) => !w.test(this.text));
  }

  log(): string {
    return this.text;
  }

  /** Runs one shell command line; commands queue behind each other. */
  run(cmd: string, opts: LabRunOptions = {}): Promise<RunResult> {
    const next = this.queue.then(() => this.runNow(cmd, opts.timeoutMs ?? 30_000, opts.subshell === true));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runNow(cmd: string, timeoutMs: number, subshell: boolean): Promise<RunResult> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.agent?.open) return this.agent.run(cmd, `${this.tag}_${++this.seq}`, timeoutMs, subshell);
    const id = `${this.tag}_${++this.seq}__`;
    const start = `__VL_S${id}`;
    const end = `__VL_E${id}:`;
    const from = this.text.length;
    // eval keeps comments, '&' and quotes in cmd from eating the end marker.
    const quoted = `'${cmd.replace(/'/g, `'\\''`)}'`;
    const line = ` echo "__VL_S""${id}"; eval ${quoted}; echo "__VL_E""${id}:$?"\n`;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        test: (log) => {
          const s = log.indexOf(start, from);
          if (s < 0) return false;
          const body = log.indexOf('\n', s);
          if (body < 0) return false;
          const e = log.indexOf(end, body);
          if (e < 0) return false;
          const m = /^(\d+)\r?\n/.exec(log.slice(e + end.length));
          if (!m) return false;
          clearTimeout(timer);
          resolve({ output: log.slice(body + 1, e).replace(/\r\n/g, '\n'), status: Number(m[1]) });
          return true;
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        this.send('\x03'); // leave the shell usable for the next command
        reject(new Error(`run(${JSON.stringify(cmd)}) timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
      this.send(line);
    });
  }
}
