import { target } from '../../inspector/targets.ts';
import { chainsIn, clickFeature, clickWhere, newestEvent, descOf, no, ok, queueOf, typePending } from '../checks.ts';
import type { TimelineEvent } from '../../../virtio/inspect/types.ts';
import type { Lesson, LessonView } from '../types.ts';

const isReply = (e: TimelineEvent) => e.kind === 'complete' && e.queue === 0 && /ICMP echo reply/.test(e.detail ?? '');
const replies = (v: LessonView) => v.events.filter(isReply);
const pendingBuffers = (v: LessonView) => chainsIn(queueOf(v.fn, 0)!, 'pending').map((c) => c.head);

export const netReceive: Lesson = {
  id: 'net-receive',
  title: 'The network receive queue',
  summary: 'Buffers posted before any packet arrives, a ping reply filling one, and num_buffers with MRG_RXBUF.',
  steps: [
    {
      title: 'Buffers posted ahead of time',
      text: `A NIC cannot ask the driver for memory when a frame arrives. So virtio_net fills \`receiveq\` with empty, device-writable buffers when the interface comes up, and refills it as buffers come back. They sit in the available ring, pending, until frames arrive.`,
      cite: ['§5.1.6.3 Setting Up Receive Buffers', 'Linux: try_fill_recv, virtqueue_add_inbuf'],
      device: 'net',
      highlight: [target.counter(0, 'pending'), target.availIdx(0)],
      check: typePending(0, 'How many receive buffers are posted and waiting (pending on receiveq)?'),
    },
    {
      title: 'One receive buffer',
      text: `Each pending chain on receiveq is one buffer (flag W: the device writes it). With MRG_RXBUF Linux posts page-fragment buffers of about one MTU and lets a big packet spread over several.`,
      cite: ['§5.1.6.3.1', 'Linux: add_recvbuf_mergeable'],
      device: 'net',
      highlight: (v) => pendingBuffers(v).slice(0, 4).map((h) => target.desc(0, h)),
      check: {
        kind: 'number',
        question: 'What is the len of one posted buffer? (the len column of a pending receiveq descriptor)',
        verify(v, n) {
          const q = queueOf(v.fn, 0)!;
          const lens = pendingBuffers(v).map((h) => descOf(q, h)?.len);
          if (lens.length === 0) return no('No buffer is pending: wait for the driver to refill receiveq.');
          return lens.includes(n) ? ok(`${n} bytes: a frame of up to 1514 bytes plus the 12-byte virtio_net_hdr fits.`) : no('Read the len column of one of the outlined rows in receiveq’s descriptor table.', target.desc(0, pendingBuffers(v)[0]!));
        },
      },
    },
    {
      title: 'Mergeable buffers',
      text: `With VIRTIO_NET_F_MRG_RXBUF every received packet starts with a 12-byte virtio_net_hdr whose \`num_buffers\` says how many buffers (used elements) the packet fills. A ping reply fits in one.`,
      cite: ['§5.1.6 Device Operation (struct virtio_net_hdr)', '§5.1.6.4 Processing of Incoming Packets'],
      device: 'net',
      highlight: [target.feature('VIRTIO_NET_F_MRG_RXBUF')],
      check: clickFeature('Click the feature bit that lets one packet span several receive buffers.', 'VIRTIO_NET_F_MRG_RXBUF', 'The one you want merges rx buffers.'),
    },
    {
      title: 'A ping fills one',
      text: `Ping the relay's gateway. The echo request leaves on transmitq; the reply arrives from the relay, and our device pops a posted buffer, writes header + frame into it, and returns it in the used ring. The timeline decodes it (filter: receiveq).`,
      cite: ['§5.1.6.4', 'Linux: virtnet_poll, receive_mergeable'],
      device: 'net',
      action: { kind: 'run', command: 'ping -c 1 10.0.2.2' },
      highlight: (v) => newestEvent(v, isReply),
      check: clickWhere('In the timeline, click the receiveq completion that carried the echo reply.', (v, t) => {
        const e = t.kind === 'event' ? v.events.find((x) => x.seq === t.index) : undefined;
        if (!e) return no('Click a row of the timeline (at the bottom of the net tab).', newestEvent(v, isReply));
        if (isReply(e)) return ok(`Buffer #${e.head} came back with ${e.len} bytes written.`);
        if (e.queue === 1) return no('That is transmitq: the request going out. The reply comes in on receiveq.', newestEvent(v, isReply));
        return no('Look for a `complete` row on receiveq whose text says ICMP echo reply.', newestEvent(v, isReply));
      }),
    },
    {
      title: 'What the used len counts',
      text: `The used element's len is what the device wrote into the buffer: the 12-byte header (num_buffers = 1) plus the Ethernet frame.`,
      cite: ['§2.7.8', '§5.1.6.4'],
      device: 'net',
      highlight: (v) => newestEvent(v, isReply),
      check: {
        kind: 'number',
        question: 'What len did the device return with the echo reply?',
        verify(v, n) {
          const all = replies(v);
          if (all.length === 0) return no('Run the ping first.');
          return all.some((e) => e.len === n) ? ok(`${n} = 12 (virtio_net_hdr) + ${n - 12} (Ethernet frame: 14 + 20 IP + 8 ICMP + 56 data).`) : no('Read the length on the outlined timeline row.', target.event(all.at(-1)!.seq));
        },
      },
    },
  ],
};
