/**
 * The worker's side of the ring inspector: while the page subscribes, every function gets
 * a Timeline tracer and the page gets a snapshot at most every SNAPSHOT_INTERVAL_MS; when
 * it unsubscribes the tracers come off and the devices are back to bare counters.
 * Freeze/step/resume act on the transport's per-queue gates, subscribed or not.
 */
import { UNKNOWN_DEVICE_VIEW, inspectorView, type InspectorView } from '../devices/inspector-view.ts';
import { descriptorFor } from '../devices/registry.ts';
import { snapshotFunction } from '../virtio/inspect/function-snapshot.ts';
import { Timeline } from '../virtio/inspect/timeline.ts';
import type { InspectorSnapshot } from '../virtio/inspect/types.ts';
import type { VirtioPciFunction } from '../virtio/pci/virtio-pci-function.ts';
import type { VirtioDevice } from '../virtio/device.ts';
import type { InspectorAction } from './protocol.ts';

/** How the inspector shows a function's device: from its registered descriptor, if any. */
function viewOf(device: VirtioDevice): InspectorView {
  const descriptor = descriptorFor(device);
  return descriptor ? inspectorView(descriptor, device) : UNKNOWN_DEVICE_VIEW;
}

/** 20 snapshots per second: smooth enough to watch, cheap enough to leave on. */
export const SNAPSHOT_INTERVAL_MS = 50;

export class InspectorService {
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly timelines = new Map<VirtioPciFunction, Timeline>();
  private readonly views: ReadonlyMap<VirtioPciFunction, InspectorView>;

  constructor(
    private readonly functions: readonly VirtioPciFunction[],
    private readonly post: (snapshot: InspectorSnapshot) => void,
  ) {
    this.views = new Map(functions.map((fn) => [fn, viewOf(fn.device)]));
  }

  get subscribed(): boolean {
    return this.timer !== undefined;
  }

  subscribe(): void {
    if (this.timer) return;
    for (const fn of this.functions) {
      const timeline = new Timeline(this.views.get(fn)!.decoder);
      this.timelines.set(fn, timeline);
      fn.tracer = timeline;
    }
    this.timer = setInterval(() => this.post(this.snapshot()), SNAPSHOT_INTERVAL_MS);
    this.post(this.snapshot());
  }

  unsubscribe(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const fn of this.functions) fn.tracer = undefined;
    this.timelines.clear();
  }

  snapshot(): InspectorSnapshot {
    return {
      now: performance.now(),
      functions: this.functions.map((fn) => snapshotFunction(fn, this.views.get(fn)!.view, this.timelines.get(fn)?.takeNew())),
    };
  }

  /** `device`: the function's name ("virtio-blk") or its short form ("blk"). Returns false if unknown. */
  control(device: string, queue: number, action: InspectorAction): boolean {
    const fn = this.functions.find((f) => f.name === device || f.name === `virtio-${device}`);
    const gate = fn?.gates[queue];
    if (!fn || !gate) return false;
    switch (action) {
      case 'freeze':
        gate.frozen = true;
        gate.credits = 0;
        break;
      case 'step':
        if (!gate.frozen) return true;
        gate.credits++;
        fn.serviceQueue(queue);
        break;
      case 'resume':
        gate.frozen = false;
        gate.credits = 0;
        // Everything the guest posted meanwhile is waiting, and it may not kick again.
        fn.serviceQueue(queue);
        break;
    }
    return true;
  }
}
