/** A notification counter: how many were sent of how many could have been (the rest suppressed). */
import { help } from './glossary.ts';
import { target } from './targets.ts';

export function Suppressed({ q, label, done, signalled, helpKey }: { q: number; label: string; done: number; signalled: number; helpKey: 'kicks' | 'interrupts' }) {
  const saved = Math.max(0, done - signalled);
  return (
    <span className="ins-counter" title={help(helpKey)} data-lab={target.counter(q, helpKey)}>
      {label} <b>{signalled.toLocaleString('en-US')}</b> / {done.toLocaleString('en-US')}
      {saved > 0 && <em> · {saved.toLocaleString('en-US')} suppressed</em>}
    </span>
  );
}
