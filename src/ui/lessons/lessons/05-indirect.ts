import { VIRTQ_DESC_F_INDIRECT } from '../../../virtio/constants.ts';
import { target } from '../../inspector/targets.ts';
import { chainsIn, clickFeature, clickWhere, descOf, freshBlock, no, ok, queueOf, servedEntry, typePending } from '../checks.ts';
import type { DescRow } from '../../../virtio/inspect/types.ts';
import type { Lesson, LessonView } from '../types.ts';

/** Pending chains whose ring descriptor is INDIRECT with a big table, largest first. */
function bigIndirect(v: LessonView): DescRow[] {
  const q = queueOf(v.fn, 0)!;
  return chainsIn(q, 'pending')
    .map((c) => descOf(q, c.head))
    .filter((d): d is DescRow => d !== undefined && (d.flags & VIRTQ_DESC_F_INDIRECT) !== 0 && d.len > 3 * 16)
    .sort((a, b) => b.len - a.len);
}

export const indirect: Lesson = {
  id: 'indirect',
  title: 'Indirect descriptors',
  summary: 'A 256 KiB read: dozens of buffers in one ring slot, and why that matters for a ring of fixed size.',
  steps: [
    {
      title: 'Why indirect tables',
      text: `A ring has a fixed number of descriptors (the queue size). A large request scattered over many memory pages would need one descriptor per page and could fill the ring alone. With INDIRECT_DESC the driver puts the chain in a separate table and spends one ring descriptor on it (flag I, its len = 16 × entries). Linux uses an indirect table for any request of more than one buffer when the feature is on.`,
      cite: ['§2.7.5.3 Indirect Descriptors', 'Linux: virtqueue_use_indirect'],
      device: 'blk',
      highlight: [target.feature('VIRTIO_F_RING_INDIRECT_DESC')],
      check: clickFeature('Click the feature bit that allows indirect tables.', 'VIRTIO_F_RING_INDIRECT_DESC', 'Look for INDIRECT.'),
    },
    {
      title: 'Freeze',
      text: `Freeze requestq so the big request stays in the ring long enough to look at.`,
      cite: ['§2.7'],
      device: 'blk',
      action: { kind: 'freeze', queue: 0 },
      highlight: [target.control(0, 'freeze')],
      check: typePending(0),
    },
    {
      title: 'One 256 KiB read',
      text: `One read of 256 KiB. The data buffer is 64 pages of memory; pages that happen to be adjacent share a descriptor, the rest get one each. So the request is a 16-byte header, up to 64 data descriptors and the status byte.`,
      cite: ['§5.2.6', '§2.7.5.3'],
      device: 'blk',
      action: { kind: 'run', command: (v) => `dd if=/dev/vda of=/dev/null bs=256k count=1 skip=${Math.floor(freshBlock(v) / 64)}`, waits: true },
      highlight: (v) => bigIndirect(v).map((d) => target.desc(0, d.index)),
      check: clickWhere('Click the ring descriptor of the big request.', (v, t) => {
        const big = bigIndirect(v);
        if (big.length === 0) return no('No big indirect request is pending yet: Run the command with the queue frozen.');
        if (t.kind !== 'desc' || t.nested !== undefined) return no('Click a row of the ring’s descriptor table (not a ↳ row inside a table).', target.desc(0, big[0]!.index));
        return big.some((d) => d.index === t.index) ? ok(`One descriptor, len ${big[0]!.len}: a table, not data.`) : no('Look for the pending row with flag I and the largest len.', target.desc(0, big[0]!.index));
      }),
    },
    {
      title: 'How many in the table',
      text: `The ring descriptor's \`len\` is the size of the table in bytes; each entry is a 16-byte virtq_desc. The inspector draws the first 16 rows.`,
      cite: ['§2.7.5.3.1 Driver Requirements: Indirect Descriptors'],
      device: 'blk',
      highlight: (v) => bigIndirect(v).map((d) => target.desc(0, d.index)),
      check: {
        kind: 'number',
        question: 'How many descriptors does its indirect table hold?',
        verify(v, n) {
          const big = bigIndirect(v);
          if (big.length === 0) return no('The big request is no longer pending: go back a step and run it again with the queue frozen.');
          return big.some((d) => d.len / 16 === n) ? ok(`All of them use one ring slot out of ${queueOf(v.fn, 0)!.size}.`) : no(`Divide the outlined descriptor’s len (${big[0]!.len}) by 16, the size of one descriptor.`, target.desc(0, big[0]!.index));
        },
      },
    },
    {
      title: 'Serve it',
      text: `Resume. The device walks the table like a chain — header, data pages, status — and returns one used element for the whole request.`,
      cite: ['§2.7.8'],
      device: 'blk',
      action: { kind: 'resume', queue: 0 },
      highlight: (v) => {
        const e = servedEntry(v, 0, 65536);
        return e ? target.usedEntry(0, e.pos) : target.control(0, 'resume');
      },
      check: {
        kind: 'number',
        question: 'What len did the device return for the big request?',
        verify(v, n) {
          const e = servedEntry(v, 0, 65536);
          if (!e) return no('Press Resume, then find the used element with the big len.', target.control(0, 'resume'));
          return n === e.len ? ok('262144 bytes of data + 1 status byte.') : no('Read the len of the outlined used element.', target.usedEntry(0, e.pos));
        },
      },
    },
  ],
};
