import { target } from '../../inspector/targets.ts';
import { clickFeature, clickWhere, near, no, ok, queueOf, typeValue } from '../checks.ts';
import type { Lesson, LessonView } from '../types.ts';

const fio = (depth: number, ios: number) =>
  `fio --name=qd${depth} --filename=/dev/vda --rw=randread --bs=4k --direct=1 --ioengine=libaio --iodepth=${depth} --size=32m --number_ios=${ios} --norandommap --randrepeat=0 | grep IOPS`;

/** Counter changes since the step's Run. */
function delta(v: LessonView) {
  const q = queueOf(v.fn, 0)!;
  const s = v.start ? queueOf(v.start.fn, 0) : undefined;
  if (!s) return undefined;
  return { requests: q.counters.requests - s.counters.requests, kicks: q.counters.kicks - s.counters.kicks };
}

export const notifications: Lesson = {
  id: 'notifications',
  title: 'Notifications and their suppression',
  summary: 'Kicks versus requests, interrupts versus completions, and how EVENT_IDX lets both sides skip them — fio at depth 1 and 32.',
  steps: [
    {
      title: 'Kicks and interrupts',
      text: `A kick is the driver writing the queue's notify address: "look at the available ring". An interrupt is the device saying "look at the used ring". Neither is needed per request: the counters show \`kicks K / R\` (K kicks for R requests taken) and \`interrupts I / C\` (I interrupts for C completions); the rest were suppressed.`,
      cite: ['§2.3 Notifications', '§2.7.13.4 Notifying The Device', '§2.7.7 Used Buffer Notification Suppression', '§2.7.10 Available Buffer Notification Suppression', 'Linux: virtqueue_kick_prepare, virtqueue_notify'],
      device: 'blk',
      highlight: [target.counter(0, 'kicks'), target.counter(0, 'interrupts')],
      check: typeValue('How many requests has requestq taken so far? (the number after the slash in kicks)', target.counter(0, 'kicks'), (v) => queueOf(v.fn, 0)?.counters.requests, 'In `kicks K / R` the second number R counts requests; K counts kicks.'),
    },
    {
      title: 'One request at a time',
      text: `fio with one request in flight (iodepth 1): each read is submitted alone, and the driver must kick for each, because the device has caught up and is waiting. The box below counts since you pressed Run.`,
      cite: ['§2.7.10', 'Linux: virtqueue_kick'],
      device: 'blk',
      action: { kind: 'run', command: fio(1, 2000) },
      deltas: 0,
      highlight: [target.counter(0, 'kicks')],
      check: {
        kind: 'number',
        question: 'When fio is done: kicks per request in this run? (Δ kicks ÷ Δ requests, one decimal)',
        verify(v, n) {
          const d = delta(v);
          if (!d || d.requests < 1000) return no('Run fio and wait until it prints its IOPS line.');
          const want = d.kicks / d.requests;
          return near(n, want, 0.1, 0.1) ? ok(`${d.kicks} kicks for ${d.requests} requests.`) : no(`Divide the two changes in the box: ${d.kicks} ÷ ${d.requests}.`);
        },
      },
    },
    {
      title: 'Thirty-two at a time',
      text: `Now 32 reads in flight. While the device is busy with earlier chains, the driver adds more without kicking: the device said (through \`avail_event\`) that it will look again anyway. Completions batch too: one interrupt can cover many used elements.`,
      cite: ['§2.7.10', '§2.7.7', 'Linux: virtqueue_enable_cb_delayed'],
      device: 'blk',
      action: { kind: 'run', command: fio(32, 4000) },
      deltas: 0,
      highlight: [target.counter(0, 'kicks'), target.counter(0, 'interrupts')],
      check: {
        kind: 'number',
        question: 'When fio is done: requests per kick in this run? (Δ requests ÷ Δ kicks, rounded)',
        verify(v, n) {
          const d = delta(v);
          if (!d || d.requests < 2000) return no('Run fio and wait until it prints its IOPS line.');
          const want = d.requests / Math.max(1, d.kicks);
          return near(n, want, 0.3, 1) ? ok(`${d.requests} requests for ${d.kicks} kicks: far fewer exits than at depth 1.`) : no(`Divide the two changes in the box: ${d.requests} ÷ ${d.kicks}.`);
        },
      },
    },
    {
      title: 'avail_event and used_event',
      text: `With EVENT_IDX each side publishes where it wants the next notification. The device writes \`avail_event\` at the end of the used ring: "kick me when avail.idx passes this". The driver writes \`used_event\` at the end of the available ring: "interrupt me when used.idx passes this". The rule is the same both ways: notify only if the new index crossed the event index since the last notification.`,
      cite: ['§2.7.10', '§2.7.7', 'Linux: vring_need_event'],
      device: 'blk',
      highlight: [target.availEvent(0), target.usedEvent(0)],
      check: clickWhere('Click the field where the device tells the driver when to kick next.', (_v, t) => {
        if (t.kind === 'avail-event' && t.queue === 0) return ok('avail_event: written by the device, read by the driver before it kicks.');
        if (t.kind === 'used-event') return no('used_event is the other direction: the driver tells the device when to interrupt. It sits in the available ring, which the driver writes.', target.availEvent(0));
        return no('It lives in the ring the device writes: the used ring header.', target.availEvent(0));
      }),
    },
    {
      title: 'The feature behind it',
      text: `Without EVENT_IDX there are only flags: VIRTQ_USED_F_NO_NOTIFY ("don't kick") and VIRTQ_AVAIL_F_NO_INTERRUPT ("don't interrupt"), all or nothing. The event indices came with a feature bit both sides must accept.`,
      cite: ['§2.7.10', '§6 VIRTIO_F_EVENT_IDX'],
      device: 'blk',
      highlight: [target.feature('VIRTIO_F_RING_EVENT_IDX'), target.usedFlags(0), target.availFlags(0)],
      check: clickFeature('Click the feature bit that turns on index-based suppression.', 'VIRTIO_F_RING_EVENT_IDX', 'Look for EVENT_IDX.'),
    },
  ],
};
