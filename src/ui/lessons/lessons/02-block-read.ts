import { VIRTQ_DESC_F_WRITE } from '../../../virtio/constants.ts';
import { target } from '../../inspector/targets.ts';
import { chainRows, chainsIn, clickWhere, descOf, freshBlock, no, ok, queueOf, servedEntry, typePending } from '../checks.ts';
import type { Lesson, LessonView } from '../types.ts';

const pendingHeads = (v: LessonView) => chainsIn(queueOf(v.fn, 0)!, 'pending').map((c) => c.head);

export const blockRead: Lesson = {
  id: 'block-read',
  title: 'Anatomy of one block read',
  summary: 'Freeze the disk’s queue, read one block, take its descriptor chain apart, step it through and read the used element.',
  steps: [
    {
      title: 'Freeze the request queue',
      text: `virtio-blk has one queue, \`requestq\`. Freeze is the inspector's control, not part of virtio: our device stops taking chains from the available ring, while the driver can go on adding them. That lets you look at a request before the device serves it.`,
      cite: ['§5.2.2 Virtqueues', '§2.7 Split Virtqueues'],
      device: 'blk',
      action: { kind: 'freeze', queue: 0 },
      highlight: [target.control(0, 'freeze'), target.control(0, 'step'), target.counter(0, 'pending')],
      check: typePending(0),
    },
    {
      title: 'Read one block',
      text: `\`dd\` reads 4 KiB from the disk. The read goes through the page cache, so we pick a block nobody has read yet, and the request really reaches the device. virtio_blk turns it into three buffers: a 16-byte header (type IN, sector), the 4096-byte data buffer, and a 1-byte status, and adds them with \`virtqueue_add_sgs\`.

Because the driver accepted INDIRECT_DESC, Linux puts the three descriptors in a separate table and uses a single ring descriptor (flag I) pointing at it. The terminal now waits: the device is frozen.`,
      cite: ['§5.2.6 Device Operation', '§2.7.5.3 Indirect Descriptors', 'Linux: virtqueue_add_sgs, virtqueue_kick'],
      device: 'blk',
      action: { kind: 'run', command: (v) => `dd if=/dev/vda of=/dev/null bs=4k count=1 skip=${freshBlock(v)}`, waits: true },
      highlight: (v) => pendingHeads(v).map((h) => target.desc(0, h)),
      check: clickWhere('In the descriptor table, click the descriptor that heads your pending request (amber row, flag I).', (v, t) => {
        const heads = pendingHeads(v);
        if (heads.length === 0) return no('Nothing is pending yet: Run the command with the queue frozen, then wait a moment for the panel to repaint.', target.counter(0, 'pending'));
        if (t.kind !== 'desc' || t.queue !== 0) return no('Click a row of the descriptor table (left column of requestq).', target.desc(0, heads[0]!));
        if (t.nested !== undefined) return no('That row is inside the indirect table. The ring itself holds only the head: the row with flag I above it.', target.desc(0, heads[0]!));
        if (!heads.includes(t.index!)) return no('That descriptor is not the head of a pending chain: look for the amber row marked ● with flag I.', target.desc(0, heads[0]!));
        return ok(`Descriptor ${t.index}: one ring slot, its ${descOf(queueOf(v.fn, 0)!, t.index!)?.len ?? '?'} bytes are a table of 16-byte descriptors.`);
      }),
    },
    {
      title: 'Header, data, status',
      text: `Open the indirect table under the head (the ↳ rows). Each descriptor has an address, a length and flags: N means the chain continues at \`next\`, W means the device writes this buffer (without W it only reads it). The order is fixed: what the device reads comes first, what it writes after.`,
      cite: ['§2.7.5 The Virtqueue Descriptor Table', '§5.2.6 struct virtio_blk_req'],
      device: 'blk',
      highlight: (v) => pendingHeads(v).flatMap((h) => chainRows(queueOf(v.fn, 0)!, h).map((r) => target.indirectDesc(0, h, r.index))),
      check: clickWhere('Click the descriptor the device will write the 4096 bytes of data into.', (v, t) => {
        const q = queueOf(v.fn, 0)!;
        const heads = pendingHeads(v);
        if (t.kind !== 'desc' || t.nested === undefined || !heads.includes(t.index!)) return no('Click one of the ↳ rows of your pending request’s indirect table.', heads[0] === undefined ? undefined : target.desc(0, heads[0]));
        const row = chainRows(q, t.index!).find((r) => r.index === t.nested);
        if (!row) return no('That row is not in the table any more: click again.');
        if (!(row.flags & VIRTQ_DESC_F_WRITE)) return no(`That one has no W: the device only reads it. It is the ${row.len}-byte header (request type and sector).`);
        if (row.len <= 1) return no('That is the 1-byte status the device writes last (0 = OK). The data buffer is the big writable one.');
        return ok(`${row.len} bytes, device-writable: the data lands here.`);
      }),
    },
    {
      title: 'Step: the device serves it',
      text: `Step lets exactly one chain through: the device pops it (last_avail_idx moves on), reads the header (VIRTIO_BLK_T_IN, sector), writes the data and the status byte, then puts a used element — the chain's head as \`id\` and the bytes it wrote as \`len\` — in the used ring, bumps used.idx, and interrupts the driver (unless the driver asked not to be, lesson 4), which finds the element with \`virtqueue_get_buf\`. If more than one chain waits, step until yours is served: dd finishes in the terminal.`,
      cite: ['§2.7.8 The Virtqueue Used Ring', '§2.7.14 Receiving Used Buffers From The Device', 'Linux: vring_interrupt, virtqueue_get_buf'],
      device: 'blk',
      action: { kind: 'step', queue: 0 },
      highlight: (v) => {
        const e = servedEntry(v, 0);
        return e ? [target.usedEntry(0, e.pos), target.usedIdx(0)] : [target.control(0, 'step'), target.usedIdx(0)];
      },
      check: clickWhere('Click the used ring element of the request you just stepped.', (v, t) => {
        const e = servedEntry(v, 0);
        if (!e) return no('Nothing was served since you pressed Step: press it (the queue must be frozen).', target.control(0, 'step'));
        if (t.kind !== 'used' || t.queue !== 0) return no('Click a row of the used ring (right column): its id is the head of the chain the device returned.', target.usedEntry(0, e.pos));
        return t.index === e.pos ? ok(`id ${e.id}: the head of your chain.`) : no(`That element returned another chain. Look for id ${e.id}, the head you stepped.`, target.usedEntry(0, e.pos));
      }),
    },
    {
      title: 'What len says',
      text: `A used element's \`len\` is the number of bytes the device wrote into the chain's writable buffers, not the size of the request. The driver uses it to know how much of its buffers hold data.`,
      cite: ['§2.7.8 The Virtqueue Used Ring (len)'],
      device: 'blk',
      highlight: (v) => {
        const e = servedEntry(v, 0);
        return e ? target.usedEntry(0, e.pos) : target.usedIdx(0);
      },
      check: {
        kind: 'number',
        question: 'What `len` did the device put in that used element?',
        verify(v, n) {
          const e = servedEntry(v, 0);
          if (!e) return no('Step the request first.', target.control(0, 'step'));
          return n === e.len ? ok(`${e.len} = 4096 bytes of data + 1 status byte: everything the device wrote.`) : no('Read the len column of the outlined used element. It counts every byte the device wrote: data and status.', target.usedEntry(0, e.pos));
        },
      },
    },
    {
      title: 'Resume',
      text: `Resume serves whatever the driver posted meanwhile and leaves the queue running. Leaving a lesson resumes anything it froze, so the VM stays healthy.`,
      cite: ['§2.7.13 Supplying Buffers to The Device', '§2.7.14 Receiving Used Buffers From The Device'],
      device: 'blk',
      action: { kind: 'resume', queue: 0 },
      highlight: [target.control(0, 'resume'), target.counter(0, 'pending')],
      check: {
        kind: 'number',
        question: 'How many chains are pending after Resume?',
        verify(v, n) {
          const q = queueOf(v.fn, 0)!;
          if (q.frozen) return no('The queue is still frozen: press Resume first.', target.control(0, 'resume'));
          return n === q.pending ? ok('Nothing waits: the device keeps up with the driver again.') : no('Read the outlined pending counter.', target.counter(0, 'pending'));
        },
      },
    },
  ],
};

