/**
 * A lesson is data: steps of text, an action the learner takes, the part of the inspector
 * the step is about, and a check of the learner's answer against the live state.
 */
import type { DeviceStats } from '../../vm/protocol.ts';
import type { FunctionSnapshot, TimelineEvent } from '../../virtio/inspect/types.ts';
import type { QueueAction } from '../inspector/targets.ts';

export type LessonDevice = 'blk' | 'net' | 'rng';

/** What a check (or a command, or a highlight) sees: the state the learner is looking at. */
export interface LessonView {
  /** The step's device, as the inspector last painted it. */
  readonly fn: FunctionSnapshot;
  /** That device's timeline so far, oldest first. */
  readonly events: readonly TimelineEvent[];
  /** The same device when the learner last took the step's action (Run / Freeze / Step / Resume), if they did. */
  readonly start?: { readonly fn: FunctionSnapshot; readonly devices: readonly DeviceStats[]; readonly lastSeq: number };
  /** The worker's device counters (twice a second), e.g. the NIC's tx frames. */
  readonly devices: readonly DeviceStats[];
  /** Where the page is served from (a command can reach the host through the relay's NAT). */
  readonly port: number;
  /** In [0, 1), drawn when the step opened: for commands that pick something at random. */
  readonly seed: number;
}

export type Verdict = { readonly ok: true; readonly say?: string } | { readonly ok: false; readonly why: string; readonly look?: string };

/** Click the right thing in the inspector (its `data-lab` target, see inspector/targets.ts). */
export interface ClickCheck {
  readonly kind: 'click';
  readonly question: string;
  verify(view: LessonView, target: string): Verdict;
}

/** Type a number read from the panel or worked out from it (hex as 0x…). */
export interface NumberCheck {
  readonly kind: 'number';
  readonly question: string;
  verify(view: LessonView, value: number): Verdict;
}

export type Check = ClickCheck | NumberCheck;

export type StepAction =
  /** A Run button that types the command into the terminal. `waits`: it blocks until the learner steps a frozen queue. */
  | { readonly kind: 'run'; readonly command: string | ((view: LessonView) => string); readonly waits?: boolean }
  /** Click Freeze / Step / Resume on one of the step device's queues in the inspector. */
  | { readonly kind: QueueAction; readonly queue: number };

export type Highlight = string | readonly string[] | ((view: LessonView) => string | readonly string[] | undefined);

export interface Step {
  readonly title: string;
  /** Paragraphs separated by blank lines; `code` in backticks. */
  readonly text: string;
  /** Where it comes from: virtio 1.2 sections ("§2.7.6") and Linux's "Virtio on Linux" names. */
  readonly cite: readonly string[];
  readonly device: LessonDevice;
  readonly action?: StepAction;
  /** `data-lab` targets to outline (or `css:` selectors outside the inspector). */
  readonly highlight?: Highlight;
  readonly check: Check;
  /** Show the step queue's counters as changes since the action (Δ kicks, Δ requests…). */
  readonly deltas?: number;
}

export interface Lesson {
  /** URL-safe, stable: progress and deep links use it. */
  readonly id: string;
  readonly title: string;
  readonly summary: string;
  readonly steps: readonly Step[];
  /** A shell command that puts back what the lesson changed in the guest, run when the learner leaves. */
  readonly restore?: string;
}
