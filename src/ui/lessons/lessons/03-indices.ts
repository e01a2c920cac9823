import { target } from '../../inspector/targets.ts';
import { availOf, freshBlock, no, ok, queueOf, typePending, typeValue, usedOf } from '../checks.ts';
import type { Lesson } from '../types.ts';

export const indices: Lesson = {
  id: 'indices',
  title: 'The indices',
  summary: 'avail.idx, last_avail_idx and used.idx; what pending and in flight mean; the 16-bit wrap, watched live.',
  steps: [
    {
      title: 'avail.idx: the driver’s counter',
      text: `The driver writes a chain's head into the available ring at slot \`avail.idx mod size\`, then increments \`avail.idx\`. The index is free-running: it never resets to the ring size, it counts every chain ever made available, modulo 65536. The first row of the ring (◀ avail.idx) is where the next head will go.`,
      cite: ['§2.7.6 The Virtqueue Available Ring', '§2.7.13.3 Updating idx'],
      device: 'blk',
      highlight: [target.availIdx(0)],
      check: typeValue('What is avail.idx of requestq?', target.availIdx(0), (v) => availOf(queueOf(v.fn, 0))?.idx, 'Read the bold number after `idx` in the outlined Available ring header.'),
    },
    {
      title: 'last_avail_idx: the device’s position',
      text: `The device keeps its own index into the available ring, \`last_avail_idx\`: the next entry it will take. It is not in shared memory — the spec leaves it to the device — so the inspector shows ours. Freeze the queue so the device stops moving it.`,
      cite: ['§2.7.6 The Virtqueue Available Ring', '§2.7.13 Supplying Buffers to The Device'],
      device: 'blk',
      action: { kind: 'freeze', queue: 0 },
      highlight: [target.control(0, 'freeze'), target.counter(0, 'last_avail_idx')],
      check: typeValue('What is last_avail_idx now?', target.counter(0, 'last_avail_idx'), (v) => queueOf(v.fn, 0)?.lastAvailIdx, 'Read the outlined last_avail_idx counter above the rings.'),
    },
    {
      title: 'Pending: made available, not taken',
      text: `Read 64 KiB from a part of the disk nobody has read. The driver makes the request's chain available and bumps avail.idx (the kernel's readahead may add a few more requests, each its own chain); the frozen device takes none, and dd waits. pending = avail.idx − last_avail_idx, computed modulo 65536 so it stays right across the wrap.`,
      cite: ['§2.7.6', '§2.7.13'],
      device: 'blk',
      action: {
        kind: 'run',
        command: (v) => `dd if=/dev/vda of=/dev/null bs=64k count=1 skip=${Math.floor(freshBlock(v) / 16)}`,
        waits: true,
      },
      highlight: [target.availIdx(0), target.counter(0, 'last_avail_idx'), target.counter(0, 'pending')],
      check: typePending(0, 'How many chains are pending? (avail.idx − last_avail_idx)'),
    },
    {
      title: 'In flight, then used',
      text: `When the device pops a chain it is "in flight" until the device puts it in the used ring. Our memory-backed disk completes a read inside the pop, so in flight is usually 0 here; a slow disk would show it. Resume: the device takes everything pending, returns it, used.idx catches up with avail.idx, and dd finishes.`,
      cite: ['§2.7.8 The Virtqueue Used Ring', '§2.7.14 Receiving Used Buffers From The Device'],
      device: 'blk',
      action: { kind: 'resume', queue: 0 },
      highlight: [target.usedIdx(0), target.counter(0, 'in_flight')],
      check: typeValue('What is used.idx now?', target.usedIdx(0), (v) => usedOf(queueOf(v.fn, 0))?.idx, 'Read the bold number after `idx` in the outlined Used ring header (press Resume first).'),
    },
    {
      title: 'The 16-bit wrap',
      text: `Both indices are 16-bit: after 65535 comes 0. Nothing special happens there — slots are \`idx mod size\` and differences are taken modulo 65536. The command runs just enough 4 KiB reads (fio, 32 at a time) to carry used.idx past 65535: 65536 − used.idx + 300 of them. It takes 10 s to a minute, depending on your machine; watch used.idx climb in the panel.`,
      cite: ['§2.7.13.3 Updating idx (wraps naturally at 65536)', '§2.7.8', 'Linux: vring_virtqueue last_used_idx (u16)'],
      device: 'blk',
      action: {
        kind: 'run',
        command: (v) => {
          const used = usedOf(queueOf(v.fn, 0))?.idx ?? 0;
          // io_size / bs reads in all, anywhere in the first 32 MiB: exactly enough to pass 65535.
          return `fio --name=wrap --filename=/dev/vda --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=32 --size=32m --io_size=${(65536 - used + 300) * 4}k --norandommap --randrepeat=0 | grep -E 'IOPS|ios='`;
        },
      },
      highlight: [target.usedIdx(0), target.availIdx(0)],
      check: {
        kind: 'number',
        question: 'When fio is done, type used.idx: it wrapped.',
        verify(v, n) {
          const u = usedOf(queueOf(v.fn, 0));
          const startQ = v.start ? queueOf(v.start.fn, 0) : undefined;
          const from = usedOf(startQ)?.idx;
          if (!u || from === undefined || !startQ) return no('Run the command first, then read used.idx when fio prints its result.', target.usedIdx(0));
          const served = queueOf(v.fn, 0)!.counters.completions - startQ.counters.completions;
          if (from + served < 65536) return no(`Not wrapped yet: ${served} completed since Run, used.idx needs ${65536 - from}. Wait for fio to finish.`, target.usedIdx(0));
          return n === u.idx ? ok(`${from} + ${served} completions = ${from + served}, which is ${u.idx} modulo 65536.`) : no('Read used.idx again: it is now a small number, past the wrap.', target.usedIdx(0));
        },
      },
    },
  ],
};
