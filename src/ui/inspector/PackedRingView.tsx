/**
 * One packed virtqueue as §2.8 draws it: a single descriptor ring (a map of every slot and
 * the slots around the positions, each with its AVAIL/USED bits against the wrap counters),
 * the device's and the driver's positions with their wrap counters, the Buffer IDs in
 * flight, and the two event suppression structures decoded.
 */
import type { ChainView, EventSuppressView, PackedRingView as PackedView, PackedSlotRow, QueueSnapshot, Unreadable } from '../../virtio/inspect/types.ts';
import { VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE } from '../../virtio/constants.ts';
import { help } from './glossary.ts';
import { IndirectRow, isUnreadable } from './IndirectRow.tsx';
import { Suppressed } from './Suppressed.tsx';

const hex = (n: number) => `0x${n.toString(16)}`;
const bit = (w: boolean) => (w ? 1 : 0);
const STATE_OF_LETTER: Record<string, string> = { a: 'available', f: 'in-flight', u: 'used', '·': 'free' };

/** A and U with their values (the point of the packed layout), then N / W / I. */
function PackedFlags({ flags }: { flags: number }) {
  return (
    <span className="ins-flags" title={help('packedFlags')}>
      <i className={`pk-bit ${flags & VIRTQ_DESC_F_AVAIL ? 'on' : ''}`} title={help('AVAIL')}>A{flags & VIRTQ_DESC_F_AVAIL ? 1 : 0}</i>
      <i className={`pk-bit ${flags & VIRTQ_DESC_F_USED ? 'on' : ''}`} title={help('USED')}>U{flags & VIRTQ_DESC_F_USED ? 1 : 0}</i>
      {flags & VIRTQ_DESC_F_NEXT ? <i title={help('NEXT')}>N</i> : null}
      {flags & VIRTQ_DESC_F_WRITE ? <i className="w" title={help('WRITE')}>W</i> : null}
      {flags & VIRTQ_DESC_F_INDIRECT ? <i className="ind" title={help('INDIRECT')}>I</i> : null}
    </span>
  );
}

/** Markers for the positions that point at `slot`. */
function marks(p: PackedView, slot: number): string[] {
  const out: string[] = [];
  if (p.device.nextUsed === slot) out.push(`◀ device used (wrap ${bit(p.device.usedWrap)})`);
  if (p.device.nextAvail === slot) out.push(`◀ device avail (wrap ${bit(p.device.availWrap)})`);
  if (p.driver.nextAvail === slot) out.push(`◀ driver (wrap ${bit(p.driver.wrap)})`);
  return out;
}

function RingMap({ q, size, p }: { q: number; size: number; p: PackedView }) {
  return (
    <div className="pk-map" data-testid={`ins-packed-map-${q}`} title={help('ringMap')}>
      {[...p.map].map((letter, k) => {
        const slot = (p.mapFrom + k) % size;
        const state = STATE_OF_LETTER[letter] ?? 'free';
        const dev = p.device.nextAvail === slot || p.device.nextUsed === slot;
        const drv = p.driver.nextAvail === slot;
        return (
          <span key={slot} className={`pk-cell ${state}${dev ? ' dev' : ''}${drv ? ' drv' : ''}`} title={`slot ${slot}: ${state}${marks(p, slot).map((m) => ` ${m}`).join('')}`}>
            {letter}
          </span>
        );
      })}
    </div>
  );
}

function SlotRows({ q, rows, p }: { q: number; rows: readonly PackedSlotRow[]; p: PackedView }) {
  return (
    <>
      {rows.map((d) => (
        <tbody key={d.slot} className={`ins-desc pk-${d.state}`}>
          <tr data-testid={`ins-slot-${q}-${d.slot}`}>
            <td>{d.slot}</td>
            <td>{d.state === 'used' ? <span className="ins-dim" title="a used descriptor's addr is whatever the slot held: the device writes id, len and flags">{hex(d.addr)}</span> : hex(d.addr)}</td>
            <td>{d.len}</td>
            <td title={help('bufferId')}>{d.id}</td>
            <td>
              <PackedFlags flags={d.flags} />
            </td>
            <td className="pk-state" title={help('slotState')}>{d.state}</td>
            <td className="pk-mark" title={help('wrapCounter')}>
              {marks(p, d.slot).map((m) => (
                <div key={m}>{m}</div>
              ))}
            </td>
          </tr>
          {d.indirect && (
            <IndirectRow colSpan={6} table={d.indirect} summary={() => <summary title={help('INDIRECT')}>indirect table · {Math.floor(d.len / 16)} descriptors (§2.8.7)</summary>}>
              {(rows) => (
                <tbody>
                  {rows.map((e) => (
                    <tr key={e.index}>
                      <td>↳{e.index}</td>
                      <td>{hex(e.addr)}</td>
                      <td>{e.len}</td>
                      <td>{e.flags & VIRTQ_DESC_F_WRITE ? <i className="w">W</i> : ''}</td>
                    </tr>
                  ))}
                </tbody>
              )}
            </IndirectRow>
          )}
        </tbody>
      ))}
    </>
  );
}

function EventArea({ q, title, helpKey, at, v, side }: { q: number; title: string; helpKey: 'driverEvent' | 'deviceEvent'; at: number; v: EventSuppressView | Unreadable; side: string }) {
  return (
    <div className="ins-ring pk-event" data-testid={`ins-${helpKey === 'driverEvent' ? 'driver' : 'device'}-event-${q}`}>
      <h4 title={help(helpKey)}>
        {title} <span className="ins-dim">@ {hex(at)}</span>
      </h4>
      {isUnreadable(v) ? (
        <div className="ins-err">{v.unreadable}</div>
      ) : (
        <div className="ins-kv">
          <span title={help('eventFlags')}>
            flags <b className={v.mode === 'DISABLE' ? 'ins-supp' : ''}>{v.mode}</b>
            {v.flags > 3 ? <span className="ins-err"> (raw {hex(v.flags)})</span> : null}
          </span>
          <span title={help('offWrap')}>
            off_wrap {hex(v.offWrap)} = slot <b>{v.offset}</b>, wrap <b>{bit(v.wrap)}</b>
            {v.mode !== 'DESC' ? <span className="ins-dim"> (unused unless DESC)</span> : null}
          </span>
          <span className="ins-dim">{side}</span>
        </div>
      )}
    </div>
  );
}

function Buffers({ chains }: { chains: readonly ChainView[] }) {
  if (chains.length === 0) return <div className="ins-dim">no buffer available, in flight or just used</div>;
  return (
    <ul className="pk-buffers" title={help('packedChains')}>
      {chains.map((c, k) => (
        <li key={k} className={c.state}>
          id <b>{c.head < 0 ? '?' : c.head}</b> · {c.state} · slot{c.descriptors.length > 1 ? 's' : ''} {c.descriptors.join(', ')}
          {c.truncated ? <span className="ins-err"> ({c.truncated})</span> : null}
        </li>
      ))}
    </ul>
  );
}

/** The body of a packed queue's section (RingView draws the header and the controls). */
export function PackedRingBody({ q, p }: { q: QueueSnapshot; p: PackedView }) {
  return (
    <div className="pk" data-testid={`ins-packed-${q.index}`}>
      <div className="ins-counters">
        <span className="ins-counter pk-pos" title={help('deviceAvail')} data-testid={`ins-device-avail-${q.index}`}>
          device avail slot <b>{p.device.nextAvail}</b> · wrap <b>{bit(p.device.availWrap)}</b>
        </span>
        <span className="ins-counter pk-pos" title={help('deviceUsed')} data-testid={`ins-device-used-${q.index}`}>
          device used slot <b>{p.device.nextUsed}</b> · wrap <b>{bit(p.device.usedWrap)}</b>
        </span>
        <span className="ins-counter pk-pos" title={help('driverPos')} data-testid={`ins-driver-pos-${q.index}`}>
          driver slot <b>{p.driver.exact ? '' : '≥ '}{p.driver.nextAvail}</b> · wrap <b>{bit(p.driver.wrap)}</b>
        </span>
        <span className={`ins-counter ${q.pending ? 'hot' : ''}`} title={help('packedPending')}>
          pending <b data-testid={`ins-pending-${q.index}`}>{q.pending}</b> ({p.availableSlots} slot{p.availableSlots === 1 ? '' : 's'})
        </span>
        <span className="ins-counter" title={help('packedInFlight')} data-testid={`ins-inflight-ids-${q.index}`}>
          in flight <b>{q.inFlight}</b>
          {p.inFlightIds.length > 0 ? ` · ids ${p.inFlightIds.join(', ')}${p.inFlightIds.length < q.inFlight ? ' …' : ''}` : ''}
        </span>
        <Suppressed q={q.index} label="kicks" done={q.counters.requests} signalled={q.counters.kicks} helpKey="kicks" />
        <Suppressed q={q.index} label="interrupts" done={q.counters.completions} signalled={q.counters.interrupts} helpKey="interrupts" />
      </div>
      <h4 title={help('ringMap')}>
        Descriptor ring <span className="ins-dim">@ {hex(p.descRing)} · {q.size} slots{p.mapFrom !== 0 || p.map.length < q.size ? ` · map from slot ${p.mapFrom}` : ''}</span>
      </h4>
      <RingMap q={q.index} size={q.size} p={p} />
      <div className="pk-events">
        <EventArea q={q.index} title="Driver Event Suppression" helpKey="driverEvent" at={p.driverEventAddr} v={p.driverEvent} side="driver → device: interrupts" />
        <EventArea q={q.index} title="Device Event Suppression" helpKey="deviceEvent" at={p.deviceEventAddr} v={p.deviceEvent} side="device → driver: kicks" />
      </div>
      <div className="pk-grid">
        <div className="ins-ring ins-table">
          <table>
            <thead>
              <tr>
                <th title={help('packedSlot')}>slot</th>
                <th title={help('addr')}>addr</th>
                <th title={help('len')}>len</th>
                <th title={help('bufferId')}>id</th>
                <th title={help('packedFlags')}>flags</th>
                <th title={help('slotState')}>state</th>
                <th title={help('wrapCounter')}>positions</th>
              </tr>
            </thead>
            <SlotRows q={q.index} rows={p.slots} p={p} />
          </table>
          <div className="ins-legend">
            <span className="pk-available">available</span>
            <span className="pk-in-flight">in flight</span>
            <span className="pk-used">used</span>
            <span className="pk-free">free</span>
          </div>
        </div>
        <div className="ins-ring">
          <h4 title={help('packedChains')}>Buffers</h4>
          <Buffers chains={q.chains} />
        </div>
      </div>
    </div>
  );
}
