/**
 * `window.virtioLab`: the page's public API for users' own Playwright tests.
 * `ready`, `run` and `serialLog` are stable; later features add members, never change these.
 */
import type { RunOptions, RunResult } from '../vm/console-session.ts';
import type { VmClient, VmSnapshot } from './vm-client.ts';

export interface VirtioLabApi {
  /** Resolves at the shell prompt of the current boot (a new promise after restart()). */
  readonly ready: Promise<void>;
  /** Runs one shell command line in the guest: its output and exit status. */
  run(cmd: string, opts?: RunOptions): Promise<RunResult>;
  /** The console output of the current boot so far. */
  serialLog(): string;
  /** Restarts the VM (a fresh worker and boot). */
  restart(): void;
  /** Current VM state, load progress, uptime and errors. */
  status(): VmSnapshot;
}

declare global {
  interface Window {
    virtioLab: VirtioLabApi;
  }
}

export function installLabApi(client: VmClient): VirtioLabApi {
  const api: VirtioLabApi = {
    get ready() {
      return client.session.ready;
    },
    run: (cmd, opts) => client.session.run(cmd, opts),
    serialLog: () => client.session.log(),
    restart: () => client.start(),
    status: () => client.snapshot(),
  };
  window.virtioLab = api;
  return api;
}
