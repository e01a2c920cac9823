/**
 * `window.virtioLab`: the page's public API for users' own Playwright tests.
 * `ready`, `run` and `serialLog` are stable; later features add members, never change these.
 */
import type { RunOptions, RunResult } from '../vm/console-session.ts';
import type { VmClient, VmSnapshot } from './vm-client.ts';
import type { FunctionSnapshot, TimelineEvent } from '../virtio/inspect/types.ts';
import type { LessonEngine } from './lessons/engine.ts';
import type { Verdict } from './lessons/types.ts';
import type { StateInfo } from '../vm/protocol.ts';
import { defaultStateName, deleteState, listStates, stateFileBlob } from './states.ts';

/** The ring inspector, for tests and the curious. `device`: "rng", "blk", "net" (or "virtio-blk"…). */
export interface InspectorApi {
  /** Show / hide the panel (snapshots flow only while it is shown). */
  show(): void;
  hide(): void;
  /** The newest snapshot of one device, if any arrived yet. */
  device(device: string): FunctionSnapshot | undefined;
  /** The device's events so far (oldest first), optionally of one queue. */
  events(device: string, queue?: number): TimelineEvent[];
  /** Stop consuming a queue: the guest keeps posting, nothing is served. */
  freeze(device: string, queue: number): void;
  /** While frozen: serve exactly one more chain. */
  step(device: string, queue: number): void;
  /** Serve everything pending and go on as normal. */
  resume(device: string, queue: number): void;
}

/** Guided lessons, for tests and teachers. Steps are numbered from 1, as in `?lesson=ID&step=N`. */
export interface LessonsApi {
  list(): { id: string; title: string; steps: { title: string; check: 'click' | 'number' }[] }[];
  /** Opens a lesson (at `step`, default where the learner left it); false if there is no such lesson. */
  open(id: string, step?: number): boolean;
  /** The open lesson and step, the last verdict on it; undefined on the list. */
  current(): { id: string; title: string; step: number; steps: number; verdict?: Verdict; answer?: string } | undefined;
  /** Back to the list (resumes what the lesson froze). */
  close(): void;
}

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
  /** Like status(), with the device counters and instructions read from the worker now. */
  stats(): Promise<VmSnapshot>;
  readonly inspector: InspectorApi;
  readonly lessons: LessonsApi;
  /**
   * Saves the running VM (and its disk's contents) as a state named `name` (default
   * "state-<date>-<time>"), kept in the browser; resolves with the state file.
   */
  saveState(name?: string): Promise<Blob>;
  /**
   * Restarts the VM from a state: a file (e.g. one saveState() gave) or a saved state's
   * name. Resolves when the restored VM is ready; rejects with the reason when the state
   * cannot be restored (the VM then boots the kernel instead).
   */
  restoreState(state: Blob | string): Promise<void>;
  /** The saved states, newest first (their headers; unreadable files are left out). */
  states(): Promise<StateInfo[]>;
  deleteState(name: string): Promise<void>;
}

declare global {
  interface Window {
    virtioLab: VirtioLabApi;
  }
}

export function installLabApi(client: VmClient, lessons: LessonEngine): VirtioLabApi {
  const api: VirtioLabApi = {
    get ready() {
      return client.ready;
    },
    // The public options only: LabRunOptions are the lab's own.
    run: (cmd, opts) => client.session.run(cmd, { timeoutMs: opts?.timeoutMs }),
    serialLog: () => client.session.log(),
    restart: () => client.start(),
    status: () => client.snapshot(),
    saveState: async (name) => {
      const info = await client.saveState(name ?? defaultStateName());
      return stateFileBlob(info.name);
    },
    restoreState: async (state) => {
      if (typeof state === 'string') client.restore({ name: state });
      else client.restore({ bytes: new Uint8Array(await state.arrayBuffer()), label: state instanceof File ? state.name : 'a file' });
      return client.restoreOutcome();
    },
    states: async () => (await listStates()).flatMap((s) => (s.info ? [s.info] : [])),
    deleteState: (name) => deleteState(name),
    stats: () => client.freshStats(),
    inspector: {
      show: () => client.inspector.setVisible(true),
      hide: () => client.inspector.setVisible(false),
      device: (device) => client.inspector.fn(device),
      events: (device, queue) => client.inspector.events(device).filter((e) => queue === undefined || e.queue === queue),
      freeze: (device, queue) => client.inspectControl(device, queue, 'freeze'),
      step: (device, queue) => client.inspectControl(device, queue, 'step'),
      resume: (device, queue) => client.inspectControl(device, queue, 'resume'),
    },
    lessons: {
      list: () => lessons.lessons.map((l) => ({ id: l.id, title: l.title, steps: l.steps.map((s) => ({ title: s.title, check: s.check.kind })) })),
      open: (id, step) => lessons.open(id, step === undefined ? undefined : step - 1),
      current: () => {
        const c = lessons.current;
        if (!c.lesson) return undefined;
        return {
          id: c.lesson.id,
          title: c.lesson.title,
          step: c.step + 1,
          steps: c.lesson.steps.length,
          ...(c.verdict ? { verdict: c.verdict } : {}),
          ...(c.answer !== undefined ? { answer: c.answer } : {}),
        };
      },
      close: () => lessons.close(),
    },
  };
  window.virtioLab = api;
  return api;
}
