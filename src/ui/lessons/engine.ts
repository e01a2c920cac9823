/**
 * The lesson engine: which lesson and step is open, the learner's progress (localStorage),
 * the deep link (?lesson=ID&step=N), actions and answers. Checks run against what the
 * inspector painted (its recent repaints, newest first), so a counter that moved while
 * the learner typed is still judged against a number they could have seen.
 */
import type { DeviceStats } from '../../vm/protocol.ts';
import type { InspectorStore } from '../inspector/store.ts';
import type { QueueAction } from '../inspector/targets.ts';
import { parseAnswer } from './checks.ts';
import type { Lesson, LessonView, Step, Verdict } from './types.ts';

/** What the engine needs of the page: the inspector, the queue controls, the terminal. */
export interface LessonHost {
  readonly inspector: InspectorStore;
  control(device: string, queue: number, action: QueueAction): void;
  /** Types a command line into the terminal, as if the learner had. */
  type(text: string): void;
  devices(): readonly DeviceStats[];
  port: number;
}

/** Only repaints this recent count as "what the learner is looking at". */
const ANSWER_WINDOW_MS = 15_000;
const STORAGE_KEY = 'virtio-lab.lessons.v1';
const REPAINT_MS = 500;

export interface Progress {
  /** Last step open (0-based). */
  step: number;
  /** Steps answered right (0-based). */
  passed: number[];
}

export interface LessonState {
  lesson: Lesson | undefined;
  /** 0-based. */
  step: number;
  verdict: Verdict | undefined;
  /** What the learner answered (target or number), for the panel. */
  answer: string | undefined;
  /** The step's action was taken at least once. */
  acted: boolean;
}

export class LessonEngine {
  private state: LessonState = { lesson: undefined, step: 0, verdict: undefined, answer: undefined, acted: false };
  private start: LessonView['start'];
  /** Drawn when a step opens: commands that pick something at random (a fresh disk block) stay the same while it is open. */
  private seed = Math.random();
  private readonly listeners = new Set<() => void>();
  /** Queues the learner froze during this lesson: resumed when they leave it. */
  private readonly frozen = new Set<string>();
  private progressCache: Record<string, Progress>;

  constructor(
    readonly lessons: readonly Lesson[],
    private readonly host: LessonHost,
    private readonly storage: Pick<Storage, 'getItem' | 'setItem'> | undefined = globalThis.localStorage,
  ) {
    this.progressCache = this.loadProgress();
  }

  get current(): LessonState {
    return this.state;
  }

  get step(): Step | undefined {
    return this.state.lesson?.steps[this.state.step];
  }

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Calls `l` after inspector updates, at most every REPAINT_MS (the panel's own pace). */
  onRepaint(l: () => void): () => void {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = this.host.inspector.subscribe(() => {
      timer ??= setTimeout(() => {
        timer = undefined;
        l();
      }, REPAINT_MS);
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  private set(patch: Partial<LessonState>): void {
    this.state = { ...this.state, ...patch };
    this.emit();
  }

  // ---- progress ------------------------------------------------------------------------

  private loadProgress(): Record<string, Progress> {
    try {
      const raw = this.storage?.getItem(STORAGE_KEY);
      const parsed: unknown = raw ? JSON.parse(raw) : {};
      return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, Progress>) : {};
    } catch {
      return {}; // unreadable progress is no progress, never a broken page
    }
  }

  progress(id: string): Progress {
    const p = this.progressCache[id];
    return { step: p?.step ?? 0, passed: Array.isArray(p?.passed) ? p.passed : [] };
  }

  private saveProgress(id: string, p: Progress): void {
    this.progressCache = { ...this.progressCache, [id]: p };
    try {
      this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.progressCache));
    } catch {
      // storage full or denied: progress lives for this page only
    }
  }

  // ---- navigation ----------------------------------------------------------------------

  /** Opens a lesson at `step` (0-based; default where the learner left it). Returns false if unknown. */
  open(id: string, step?: number): boolean {
    const lesson = this.lessons.find((l) => l.id === id);
    if (!lesson) return false;
    if (this.state.lesson && this.state.lesson !== lesson) this.leave();
    const at = Math.min(Math.max(0, step ?? this.progress(id).step), lesson.steps.length - 1);
    this.start = undefined;
    this.host.inspector.setVisible(true);
    this.enterStep(lesson, at);
    return true;
  }

  goto(step: number): void {
    const lesson = this.state.lesson;
    if (!lesson || step < 0 || step >= lesson.steps.length) return;
    this.enterStep(lesson, step);
  }

  next(): void {
    this.goto(this.state.step + 1);
  }

  prev(): void {
    this.goto(this.state.step - 1);
  }

  /** Back to the list: the VM is left as healthy as the lesson found it. */
  close(): void {
    if (!this.state.lesson) return;
    this.leave();
    this.set({ lesson: undefined, step: 0, verdict: undefined, answer: undefined, acted: false });
    this.syncUrl();
  }

  /** The newest action's view stays the reference in later steps ("since Run"), until the next action. */
  private enterStep(lesson: Lesson, step: number): void {
    this.seed = Math.random();
    const s = lesson.steps[step]!;
    this.host.inspector.setTab(s.device);
    const p = this.progress(lesson.id);
    this.saveProgress(lesson.id, { ...p, step });
    this.set({ lesson, step, verdict: undefined, answer: undefined, acted: false });
    this.syncUrl();
  }

  private leave(): void {
    for (const key of this.frozen) {
      const [device, queue] = key.split(':');
      this.host.control(device!, Number(queue), 'resume');
    }
    this.frozen.clear();
    // Typed like a Run, so the learner sees what was put back (and no test markers).
    const restore = this.state.lesson?.restore;
    if (restore) this.host.type(`${restore}  # leaving the lesson: put back what it changed\r`);
  }

  private syncUrl(): void {
    if (typeof location === 'undefined' || typeof history === 'undefined') return;
    const url = new URL(location.href);
    if (this.state.lesson) {
      url.searchParams.set('lesson', this.state.lesson.id);
      url.searchParams.set('step', String(this.state.step + 1));
    } else {
      url.searchParams.delete('lesson');
      url.searchParams.delete('step');
    }
    history.replaceState(history.state, '', url);
  }

  // ---- actions -------------------------------------------------------------------------

  /** The view now (newest repaint) for the step's device, or undefined before the first snapshot. */
  view(): LessonView | undefined {
    return this.views()[0];
  }

  /** Recent repaints as lesson views, newest first. */
  private views(): LessonView[] {
    const s = this.step;
    if (!s) return [];
    const now = performance.now();
    const events = this.host.inspector.events(s.device);
    const devices = this.host.devices();
    const out: LessonView[] = [];
    for (const d of this.host.inspector.displayed()) {
      if (out.length > 0 && now - d.at > ANSWER_WINDOW_MS) break;
      const fn = d.snapshot.functions.find((f) => f.name === `virtio-${s.device}`);
      if (fn) out.push({ fn, events, devices, port: this.host.port, seed: this.seed, ...(this.start ? { start: this.start } : {}) });
    }
    return out;
  }

  /** The learner took the step's action (or clicked Freeze/Step/Resume on their own). */
  noteAction(device: string, queue: number, action: QueueAction): void {
    const key = `${device.replace(/^virtio-/, '')}:${queue}`;
    if (action === 'freeze') this.frozen.add(key);
    if (action === 'resume') this.frozen.delete(key);
    this.markStart();
  }

  private markStart(): void {
    const v = this.view();
    const s = this.step;
    if (v && s) this.start = { fn: v.fn, devices: this.host.devices(), lastSeq: this.host.inspector.events(s.device).at(-1)?.seq ?? 0 };
    this.set({ acted: true });
  }

  /**
   * The command the step's Run button types, computed from the newest view (a BAR address the
   * guest may still move while it boots, the used.idx now), so what is shown is what Run types.
   */
  command(): string | undefined {
    const a = this.step?.action;
    if (a?.kind !== 'run') return undefined;
    if (typeof a.command === 'string') return a.command;
    const v = this.view();
    return v ? a.command(v) : undefined;
  }

  /** Run: types the step's command into the terminal. */
  run(): void {
    const cmd = this.command();
    if (cmd === undefined) return;
    this.markStart();
    this.host.type(`${cmd}\r`);
  }

  /** Freeze / Step / Resume from the lesson's own button (the same as the inspector's). */
  act(): void {
    const s = this.step;
    const a = s?.action;
    if (!s || !a || a.kind === 'run') return;
    this.host.control(s.device, a.queue, a.kind);
    this.noteAction(s.device, a.queue, a.kind);
  }

  // ---- answers -------------------------------------------------------------------------

  /** A click on a `data-lab` target while the step asks for one. */
  answerClick(target: string): Verdict | undefined {
    const check = this.step?.check;
    if (check?.kind !== 'click') return undefined;
    return this.judge(target, (v) => check.verify(v, target));
  }

  /** A typed answer. */
  answerNumber(text: string): Verdict | undefined {
    const check = this.step?.check;
    if (check?.kind !== 'number') return undefined;
    const n = parseAnswer(text);
    if (n === undefined) return this.record(text, { ok: false, why: 'Type a number: decimal like 42, or hex like 0x2a.' });
    return this.judge(text, (v) => check.verify(v, n));
  }

  private judge(answer: string, verify: (v: LessonView) => Verdict): Verdict {
    const views = this.views();
    if (views.length === 0) return this.record(answer, { ok: false, why: 'The inspector has not shown this device yet: wait a moment for it to paint.' });
    let first: Verdict | undefined;
    for (const v of views) {
      let verdict: Verdict;
      try {
        verdict = verify(v);
      } catch (error) {
        verdict = { ok: false, why: `This check could not read the snapshot (${error instanceof Error ? error.message : String(error)}).` };
      }
      if (verdict.ok) return this.record(answer, verdict);
      first ??= verdict;
    }
    return this.record(answer, first!);
  }

  private record(answer: string, verdict: Verdict): Verdict {
    const lesson = this.state.lesson;
    if (lesson && verdict.ok) {
      const p = this.progress(lesson.id);
      if (!p.passed.includes(this.state.step)) this.saveProgress(lesson.id, { ...p, passed: [...p.passed, this.state.step].sort((a, b) => a - b) });
    }
    this.set({ verdict, answer });
    return verdict;
  }
}
