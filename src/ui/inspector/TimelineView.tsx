/** The event timeline, newest first, filterable by queue. */
import { useState } from 'react';
import type { FunctionSnapshot, TimelineEvent } from '../../virtio/inspect/types.ts';
import { help } from './glossary.ts';
import { target } from './targets.ts';

const SHOWN = 80;

/**
 * Seconds since the VM started. A fixed stamp, not "ago": rows already drawn never change,
 * so a repaint only adds rows (repainting every row's age cost the guest measurable IOPS).
 */
function stamp(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

export function TimelineView({ fn, events }: { fn: FunctionSnapshot; events: readonly TimelineEvent[] }) {
  const [queue, setQueue] = useState(-2);
  const shown: TimelineEvent[] = [];
  for (let i = events.length - 1; i >= 0 && shown.length < SHOWN; i--) {
    const e = events[i]!;
    if (queue === -2 || e.queue === queue) shown.push(e);
  }
  const name = (q: number) => (q < 0 ? '' : (fn.queues[q]?.name ?? `q${q}`));
  return (
    <section className="ins-timeline" data-testid="ins-timeline" data-lab={target.timeline}>
      <h3 title={help('timeline')}>
        Timeline <span className="ins-dim">newest first · {events.length} recorded</span>
        <span className="spacer" />
        <select value={queue} onChange={(e) => setQueue(Number(e.target.value))} data-testid="ins-timeline-filter" aria-label="filter by queue">
          <option value={-2}>all queues</option>
          {fn.queues.map((q) => (
            <option key={q.index} value={q.index}>
              {q.name}
            </option>
          ))}
        </select>
      </h3>
      <table>
        <tbody>
          {shown.map((e) => (
            <tr key={e.seq} className={`ev-${e.kind}`} data-lab={target.event(e.seq)}>
              <td className="ins-t">{stamp(e.t)}</td>
              <td>
                <span className="ins-kind">{e.kind}</span>
              </td>
              <td>{name(e.queue)}</td>
              <td>{e.head !== undefined ? `#${e.head}` : ''}</td>
              <td>{e.len !== undefined ? `${e.len} B` : ''}</td>
              <td className="ins-detail">{e.detail ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
