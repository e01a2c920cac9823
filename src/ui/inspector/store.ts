/**
 * The page's side of the ring inspector: whether the panel is shown (and so whether the
 * worker sends snapshots), the newest snapshot, and each function's event history — the
 * worker ships only new events, the page keeps a bounded tail.
 */
import type { FunctionSnapshot, InspectorSnapshot, TimelineEvent } from '../../virtio/inspect/types.ts';
import { RateHistory, type Rates } from './rates.ts';

/** Events kept per function on the page (newest win). */
export const HISTORY_EVENTS = 4000;
/** Repaints remembered: what the learner saw over the last seconds, for lesson checks. */
export const DISPLAYED_KEPT = 24;

export interface Displayed {
  /** Page clock when it was painted. */
  at: number;
  snapshot: InspectorSnapshot;
}

export class InspectorStore {
  private latest: InspectorSnapshot | undefined;
  private readonly history = new Map<string, TimelineEvent[]>();
  private readonly rateHistory = new Map<string, RateHistory>();
  private readonly listeners = new Set<() => void>();
  private shown = false;
  private pageHidden = false;
  private tabName = 'virtio-blk';
  private readonly painted: Displayed[] = [];

  /** `subscribe(on)` tells the worker to start or stop snapshots. */
  constructor(private readonly setSubscribed: (on: boolean) => void) {
    if (typeof document !== 'undefined') {
      // A background tab draws nothing: the worker need not send anything either.
      document.addEventListener('visibilitychange', () => {
        this.pageHidden = document.hidden;
        this.sync();
      });
      this.pageHidden = document.hidden;
    }
  }

  get visible(): boolean {
    return this.shown;
  }

  setVisible(visible: boolean): void {
    if (visible === this.shown) return;
    this.shown = visible;
    this.sync();
    this.emit();
  }

  /** The device tab the panel shows ("virtio-blk"…). */
  get tab(): string {
    return this.tabName;
  }

  setTab(name: string): void {
    const full = name.startsWith('virtio-') ? name : `virtio-${name}`;
    if (full === this.tabName) return;
    this.tabName = full;
    this.emit();
  }

  /** The panel painted this snapshot (called after each repaint). */
  markDisplayed(snapshot: InspectorSnapshot): void {
    if (this.painted.at(-1)?.snapshot === snapshot) return;
    this.painted.push({ at: performance.now(), snapshot });
    if (this.painted.length > DISPLAYED_KEPT) this.painted.shift();
  }

  /** What the panel painted recently, newest first: what the learner is looking at. */
  displayed(): readonly Displayed[] {
    return [...this.painted].reverse();
  }

  /** After a (re)boot the worker is fresh: ask again if the panel is shown. */
  resubscribe(): void {
    this.painted.length = 0;
    this.latest = undefined;
    this.history.clear();
    this.rateHistory.clear();
    this.sync();
    this.emit();
  }

  private sync(): void {
    this.setSubscribed(this.shown && !this.pageHidden);
  }

  push(snapshot: InspectorSnapshot): void {
    for (const fn of snapshot.functions) {
      let rates = this.rateHistory.get(fn.name);
      if (!rates) this.rateHistory.set(fn.name, (rates = new RateHistory()));
      rates.add(snapshot.now, fn);
      if (fn.events.length === 0) continue;
      const list = this.history.get(fn.name) ?? [];
      list.push(...fn.events);
      if (list.length > HISTORY_EVENTS) list.splice(0, list.length - HISTORY_EVENTS);
      this.history.set(fn.name, list);
    }
    this.latest = snapshot;
    this.emit();
  }

  snapshot(): InspectorSnapshot | undefined {
    return this.latest;
  }

  fn(name: string): FunctionSnapshot | undefined {
    return this.latest?.functions.find((f) => f.name === name || f.name === `virtio-${name}`);
  }

  /** Requests/s and chain bytes/s over the last minute, one value a second. */
  rates(name: string): Rates {
    return this.rateHistory.get(name)?.rates() ?? { requestsPerSecond: [], bytesPerSecond: [] };
  }

  /** Oldest first. */
  events(name: string): readonly TimelineEvent[] {
    const fn = this.fn(name);
    return (fn && this.history.get(fn.name)) ?? [];
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
