/**
 * One virtqueue: a split one as §2.7 draws it (descriptor table | available ring | used ring,
 * with the device's position, pending/in-flight counts, suppression), a packed one as §2.8
 * does (PackedRingView.tsx); freeze/step either way.
 */
import type { AvailView, ChainView, DescRow, QueueSnapshot, Unreadable, UsedView } from '../../virtio/inspect/types.ts';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY } from '../../virtio/constants.ts';
import { help } from './glossary.ts';
import { IndirectRow, isUnreadable } from './IndirectRow.tsx';
import { target } from './targets.ts';
import { PackedRingBody } from './PackedRingView.tsx';
import { Suppressed } from './Suppressed.tsx';

const hex = (n: number) => `0x${n.toString(16)}`;

function Flags({ flags }: { flags: number }) {
  return (
    <span className="ins-flags">
      {flags & VIRTQ_DESC_F_NEXT ? <i title={help('NEXT')}>N</i> : null}
      {flags & VIRTQ_DESC_F_WRITE ? <i className="w" title={help('WRITE')}>W</i> : null}
      {flags & VIRTQ_DESC_F_INDIRECT ? <i className="ind" title={help('INDIRECT')}>I</i> : null}
    </span>
  );
}

function DescRows({ q, rows, chainOf, nested }: { q: number; rows: readonly DescRow[]; chainOf: Map<number, ChainView>; nested?: boolean }) {
  return (
    <>
      {rows.map((d) => {
        const chain = nested ? undefined : chainOf.get(d.index);
        const state = chain?.state ?? 'nested';
        return (
          <tbody key={d.index} className={`ins-desc ${state}`}>
            <tr data-lab={nested ? target.indirectDesc(q, d.head, d.index) : target.desc(q, d.index)}>
              <td className="ins-chainbar" title={chain ? `chain from head ${chain.head} (${chain.state})` : undefined}>
                {chain && chain.head === d.index ? '●' : chain ? '│' : ''}
              </td>
              <td>{nested ? `↳${d.index}` : d.index}</td>
              <td>{hex(d.addr)}</td>
              <td>{d.len}</td>
              <td>
                <Flags flags={d.flags} />
              </td>
              <td>{d.flags & VIRTQ_DESC_F_NEXT ? `→ ${d.next}` : ''}</td>
            </tr>
            {d.indirect && (
              <IndirectRow
                colSpan={5}
                table={d.indirect}
                summary={(rows) => (
                  <summary>
                    indirect table · {Math.floor(d.len / 16)} descriptors
                    {rows.length < Math.floor(d.len / 16) ? ` (first ${rows.length} shown)` : ''}
                  </summary>
                )}
              >
                {(rows) => <DescRows q={q} rows={rows} chainOf={chainOf} nested />}
              </IndirectRow>
            )}
          </tbody>
        );
      })}
    </>
  );
}

function AvailRing({ q, a }: { q: QueueSnapshot; a: AvailView }) {
  const pendingPos = (pos: number) => ((pos - q.lastAvailIdx) & 0xffff) < q.pending;
  return (
    <div className="ins-ring" data-testid={`ins-avail-${q.index}`}>
      <h4 title={help('avail')}>Available ring</h4>
      <div className="ins-kv">
        <span title={help('availFlags')} data-lab={target.availFlags(q.index)}>
          flags {a.flags}
          {a.flags & VRING_AVAIL_F_NO_INTERRUPT ? <b className="ins-supp"> NO_INTERRUPT</b> : null}
        </span>
        <span title={help('availIdx')} data-lab={target.availIdx(q.index)}>
          idx <b data-testid={`ins-avail-idx-${q.index}`}>{a.idx}</b>
        </span>
        {a.usedEvent !== undefined && <span title={help('usedEvent')} data-lab={target.usedEvent(q.index)}>used_event {a.usedEvent}</span>}
      </div>
      <table>
        <thead>
          <tr>
            <th title="free-running index (mod 65536)">idx</th>
            <th title="ring slot = idx mod queue size">slot</th>
            <th>head</th>
            <th />
          </tr>
        </thead>
        <tbody>
          <tr className="ins-next">
            <td>{a.idx}</td>
            <td>{a.idx & (q.size - 1)}</td>
            <td>—</td>
            <td title={help('availIdx')}>◀ avail.idx</td>
          </tr>
          {[...a.entries].reverse().map((e) => (
            <tr key={e.pos} className={pendingPos(e.pos) ? 'pending' : ''} data-lab={target.availEntry(q.index, e.pos)}>
              <td>{e.pos}</td>
              <td>{e.pos & (q.size - 1)}</td>
              <td>{e.head}</td>
              <td title={help('lastAvailIdx')}>{e.pos === q.lastAvailIdx ? '◀ last_avail_idx' : e.pos === 65535 ? '↺ wrap' : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function UsedRing({ q, u }: { q: QueueSnapshot; u: UsedView }) {
  return (
    <div className="ins-ring" data-testid={`ins-used-${q.index}`}>
      <h4 title={help('used')}>Used ring</h4>
      <div className="ins-kv">
        <span title={help('usedFlags')} data-lab={target.usedFlags(q.index)}>
          flags {u.flags}
          {u.flags & VRING_USED_F_NO_NOTIFY ? <b className="ins-supp"> NO_NOTIFY</b> : null}
        </span>
        <span title={help('usedIdx')} data-lab={target.usedIdx(q.index)}>
          idx <b data-testid={`ins-used-idx-${q.index}`}>{u.idx}</b>
        </span>
        {u.availEvent !== undefined && <span title={help('availEvent')} data-lab={target.availEvent(q.index)}>avail_event {u.availEvent}</span>}
      </div>
      <table>
        <thead>
          <tr>
            <th>idx</th>
            <th>slot</th>
            <th>id</th>
            <th>len</th>
          </tr>
        </thead>
        <tbody>
          <tr className="ins-next">
            <td>{u.idx}</td>
            <td>{u.idx & (q.size - 1)}</td>
            <td colSpan={2} title={help('usedIdx')}>◀ used.idx</td>
          </tr>
          {[...u.entries].reverse().map((e) => (
            <tr key={e.pos} data-lab={target.usedEntry(q.index, e.pos)}>
              <td>{e.pos}</td>
              <td>{e.pos & (q.size - 1)}</td>
              <td>{e.id}</td>
              <td>{e.len}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export interface QueueControls {
  freeze(): void;
  step(): void;
  resume(): void;
}

export function RingView({ q, controls }: { q: QueueSnapshot; controls: QueueControls }) {
  if (!q.enabled) {
    return (
      <section className="ins-queue">
        <h3>
          {q.name} <span className="ins-dim">(queue {q.index}) not enabled by the driver</span>
        </h3>
      </section>
    );
  }
  const chainOf = new Map<number, ChainView>();
  for (const c of q.chains) for (const i of c.descriptors) if (!chainOf.has(i)) chainOf.set(i, c);
  return (
    <section className={`ins-queue ${q.frozen ? 'frozen' : ''}`} data-testid={`ins-queue-${q.index}`} data-queue={q.index}>
      <h3>
        {q.name}{' '}
        <span className="ins-dim">
          queue {q.index} · size {q.size}
          {q.packed ? (
            <b className="pk-badge" title={help('packedRing')} data-testid={`ins-layout-${q.index}`}>
              {' '}· packed (§2.8)
            </b>
          ) : (
            <span title="§2.7 Split Virtqueues: descriptor table, available ring, used ring" data-testid={`ins-layout-${q.index}`}> · split (§2.7)</span>
          )}
          {q.eventIdx ? ' · EVENT_IDX' : ''}
        </span>
        <span className="spacer" />
        {q.frozen ? (
          <>
            <span className="ins-frozen" title={help('frozen')}>❄ frozen</span>
            <button type="button" onClick={controls.step} data-testid={`ins-step-${q.index}`} data-lab={target.control(q.index, 'step')} title="Serve exactly one chain">
              Step
            </button>
            <button type="button" onClick={controls.resume} data-testid={`ins-resume-${q.index}`} data-lab={target.control(q.index, 'resume')} title="Serve everything pending and go on">
              Resume
            </button>
          </>
        ) : (
          <button type="button" onClick={controls.freeze} data-testid={`ins-freeze-${q.index}`} data-lab={target.control(q.index, 'freeze')} title={help('frozen')}>
            Freeze
          </button>
        )}
      </h3>
      {q.broken && <div className="ins-err">queue broken: {q.broken}</div>}
      {q.packed ? <PackedRingBody q={q} p={q.packed} /> : <SplitRingBody q={q} chainOf={chainOf} />}
    </section>
  );
}

function SplitRingBody({ q, chainOf }: { q: QueueSnapshot; chainOf: Map<number, ChainView> }) {
  return (
    <>
      <div className="ins-counters">
        <span className="ins-counter" title={help('lastAvailIdx')} data-lab={target.counter(q.index, 'last_avail_idx')}>
          last_avail_idx <b>{q.lastAvailIdx}</b>
        </span>
        <span className={`ins-counter ${q.pending ? 'hot' : ''}`} title={help('pending')} data-lab={target.counter(q.index, 'pending')}>
          pending <b data-testid={`ins-pending-${q.index}`}>{q.pending}</b>
        </span>
        <span className="ins-counter" title={help('inFlight')} data-lab={target.counter(q.index, 'in_flight')}>
          in flight <b>{q.inFlight}</b>
        </span>
        <Suppressed q={q.index} label="kicks" done={q.counters.requests} signalled={q.counters.kicks} helpKey="kicks" />
        <Suppressed q={q.index} label="interrupts" done={q.counters.completions} signalled={q.counters.interrupts} helpKey="interrupts" />
      </div>
      <div className="ins-rings">
        <div className="ins-ring ins-table">
          <h4 title={help('descTable')}>
            Descriptor table <span className="ins-dim">@ {hex(q.descTable)}</span>
          </h4>
          <table>
            <thead>
              <tr>
                <th />
                <th>#</th>
                <th title={help('addr')}>addr</th>
                <th title={help('len')}>len</th>
                <th title={help('flags')}>flags</th>
                <th title={help('next')}>next</th>
              </tr>
            </thead>
            <DescRows q={q.index} rows={q.descriptors} chainOf={chainOf} />
          </table>
          {q.descriptors.length === 0 && <div className="ins-dim ins-empty">no chain pending, in flight or just used</div>}
          {q.chains.length < q.pending + q.inFlight && (
            <div className="ins-dim">… {q.pending + q.inFlight - q.chains.filter((c) => c.state !== 'used').length} more chains not drawn</div>
          )}
          <div className="ins-legend">
            <span className="pending">pending</span>
            <span className="in-flight">in flight</span>
            <span className="used">just used</span>
          </div>
        </div>
        {isUnreadable(q.avail) ? <div className="ins-ring ins-err">{q.avail.unreadable}</div> : <AvailRing q={q} a={q.avail} />}
        {isUnreadable(q.used) ? <div className="ins-ring ins-err">{q.used.unreadable}</div> : <UsedRing q={q} u={q.used} />}
      </div>
    </>
  );
}
