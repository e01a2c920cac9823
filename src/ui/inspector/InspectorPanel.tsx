/**
 * The ring inspector beside the terminal: one tab per device, its transport, each queue's
 * rings and the event timeline. Mounted only while shown; the store subscribes the worker.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { InspectorSnapshot } from '../../virtio/inspect/types.ts';
import type { VmClient } from '../vm-client.ts';
import { RingView } from './RingView.tsx';
import { TimelineView } from './TimelineView.tsx';
import { TransportView } from './TransportView.tsx';
import { RateCharts } from './RateCharts.tsx';
import './inspector.css';

/**
 * Repaint at most this often. Snapshots arrive ~20/s, but painting a panel this size costs
 * the page's thread (which shares the machine's cores with the emulator) far more than the
 * worker pays to build them: measured, 20 repaints/s cost the guest a third of its IOPS.
 */
export const REPAINT_INTERVAL_MS = 500;

/** The store's newest snapshot, re-rendering at most every `interval` ms. */
function useThrottledSnapshot(client: VmClient, interval: number): InspectorSnapshot | undefined {
  const store = client.inspector;
  const [snap, setSnap] = useState(() => store.snapshot());
  useEffect(() => {
    let last = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      last = performance.now();
      setSnap(store.snapshot());
    };
    const unsubscribe = store.subscribe(() => {
      if (timer) return;
      timer = setTimeout(flush, Math.max(0, last + interval - performance.now()));
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [store, interval]);
  return snap;
}


export function InspectorPanel({ client }: { client: VmClient }) {
  const store = client.inspector;
  const snap = useThrottledSnapshot(client, REPAINT_INTERVAL_MS);
  const tab = useSyncExternalStore(
    (l) => store.subscribe(l),
    () => store.tab,
  );
  useEffect(() => {
    if (snap) store.markDisplayed(snap);
  }, [store, snap]);
  if (!snap) {
    return (
      <aside className="inspector" data-testid="inspector">
        <div className="ins-dim ins-empty">Waiting for the VM…</div>
      </aside>
    );
  }
  const fn = snap.functions.find((f) => f.name === tab) ?? snap.functions[0];
  return (
    <aside className="inspector" data-testid="inspector">
      <nav className="ins-tabs" role="tablist">
        {snap.functions.map((f) => (
          <button key={f.name} type="button" role="tab" aria-selected={f === fn} className={f === fn ? 'active' : ''} onClick={() => store.setTab(f.name)} data-testid={`ins-tab-${f.shortName}`}>
            {f.shortName}
            {f.queues.some((q) => q.frozen) && ' ❄'}
          </button>
        ))}
      </nav>
      {fn && (
        <div className="ins-body" data-testid={`ins-fn-${fn.shortName}`}>
          <TransportView fn={fn} />
          <RateCharts rates={store.rates(fn.name)} />
          {fn.queues.map((q) => (
            <RingView
              key={q.index}
              q={q}
              controls={{
                freeze: () => client.inspectControl(fn.name, q.index, 'freeze'),
                step: () => client.inspectControl(fn.name, q.index, 'step'),
                resume: () => client.inspectControl(fn.name, q.index, 'resume'),
              }}
            />
          ))}
          <TimelineView fn={fn} events={store.events(fn.name)} />
        </div>
      )}
    </aside>
  );
}
