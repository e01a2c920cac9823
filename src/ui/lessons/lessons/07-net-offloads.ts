import { target } from '../../inspector/targets.ts';
import { clickFeature, clickWhere, near, newestEvent, no, ok, queueOf, stat } from '../checks.ts';
import type { TimelineEvent } from '../../../virtio/inspect/types.ts';
import type { Lesson, LessonView } from '../types.ts';

/** Wire frames a tx super-frame becomes: TCP payload ÷ gso_size, rounded up. */
export function wireFrames(e: TimelineEvent): number | undefined {
  const size = /gso \d+ size (\d+)/.exec(e.detail ?? '')?.[1];
  const length = /length (\d+)$/.exec(String(e.fields?.summary ?? ''))?.[1];
  if (!size || !length || e.kind !== 'pop' || e.queue !== 1) return undefined;
  return Math.ceil(Number(length) / Number(size));
}
const isSuperFrame = (e: TimelineEvent) => (wireFrames(e) ?? 0) > 1;
const superFrames = (v: LessonView) => v.events.filter(isSuperFrame);


export const netOffloads: Lesson = {
  id: 'net-offloads',
  title: 'Transmit offloads',
  summary: 'Checksum offload and TSO: one TCP super-frame in a tx chain becomes many frames on the wire.',
  restore: 'echo 2 > /proc/sys/net/ipv4/tcp_min_tso_segs',
  steps: [
    {
      title: 'Checksum offload',
      text: `With VIRTIO_NET_F_CSUM the driver may hand over a packet whose TCP/UDP checksum is not filled in: the virtio_net_hdr says NEEDS_CSUM, where the checksum starts and where to store it, and the device computes it.`,
      cite: ['§5.1.3 Feature bits', '§5.1.6.2 Packet Transmission'],
      device: 'net',
      highlight: [target.feature('VIRTIO_NET_F_CSUM')],
      check: clickFeature('Click the feature that lets the driver leave checksums to the device.', 'VIRTIO_NET_F_CSUM', 'The transmit one is plain CSUM (GUEST_CSUM is the receive side).'),
    },
    {
      title: 'Segmentation offload',
      text: `With VIRTIO_NET_F_HOST_TSO4 the driver may hand over one TCP "super-frame" of up to 64 KiB; the header's gso_type and gso_size tell the device to cut it into MSS-sized segments, each with its own IP and TCP header and checksum. Fewer, larger chains: fewer kicks and far less guest work per byte.`,
      cite: ['§5.1.6.2', '§5.1.3 VIRTIO_NET_F_HOST_TSO4'],
      device: 'net',
      highlight: [target.feature('VIRTIO_NET_F_HOST_TSO4')],
      check: clickFeature('Click the feature that lets the driver send TCP super-frames.', 'VIRTIO_NET_F_HOST_TSO4', 'Look for TSO4 offered by the host (device) side.'),
    },
    {
      title: 'Upload 2 MiB',
      text: `The guest sends 2 MiB to this lab's web server through the relay (it answers 404; we only want the upload). Linux sizes each super-frame to about 1 ms of data at the current rate — on an emulated CPU only 2–3 segments — and to what the congestion window allows. \`tcp_min_tso_segs\` raises the first floor to 44 segments, so super-frames grow as the window opens: a few KiB on a busy machine, up to 64 KiB on a fast one. (Leaving the lesson puts it back to 2.)`,
      cite: ['§5.1.6.2', 'Linux: tcp_tso_autosize, start_xmit'],
      device: 'net',
      action: {
        kind: 'run',
        command: (v) =>
          `echo 44 > /proc/sys/net/ipv4/tcp_min_tso_segs; (printf 'POST /upload HTTP/1.1\\r\\nHost: lab\\r\\nContent-Length: 2097152\\r\\n\\r\\n'; dd if=/dev/zero bs=64k count=32 2>/dev/null) | timeout 30 nc 10.0.2.2 ${v.port} | head -1`,
      },
      deltas: 1,
      highlight: (v) => newestEvent(v, isSuperFrame),
      check: clickWhere('In the timeline (filter: transmitq), click a tx chain marked `gso`: one super-frame.', (v, t) => {
        const e = t.kind === 'event' ? v.events.find((x) => x.seq === t.index) : undefined;
        if (!e) return no('Click a row of the timeline.', newestEvent(v, isSuperFrame));
        if (isSuperFrame(e)) return ok(`${e.len} bytes in one chain.`);
        return no('Look for a `pop` row on transmitq whose text starts with [NEEDS_CSUM gso 1 size …].', newestEvent(v, isSuperFrame));
      }),
    },
    {
      title: 'One chain, many frames',
      text: `The row shows gso size (the MSS) and the TCP payload length. The device cuts the payload into pieces of at most gso_size bytes, each sent as its own Ethernet frame.`,
      cite: ['§5.1.6.2.1 Driver Requirements: Packet Transmission'],
      device: 'net',
      highlight: (v) => newestEvent(v, isSuperFrame),
      check: {
        kind: 'number',
        question: 'Pick one gso row: how many frames does it become on the wire? (length ÷ gso size, rounded up)',
        verify(v, n) {
          const all = superFrames(v);
          if (all.length === 0) return no('Run the upload first (previous step).');
          if (all.some((e) => wireFrames(e) === n)) return ok('Each one gets its own copy of the headers, a fresh IP id and TCP sequence number, and its checksum.');
          const e = all.at(-1)!;
          return no(`Take the outlined row: its TCP \`length\` divided by its gso \`size\`, rounded up (${wireFrames(e)} for that one).`, target.event(e.seq));
        },
      },
    },
    {
      title: 'Counted on both sides',
      text: `The queue counts chains (requests on transmitq, in the box); the NIC counts the frames it put on the wire (Network panel, tx). The ratio is the work TSO saved the guest.`,
      cite: ['§5.1.6.2'],
      device: 'net',
      deltas: 1,
      highlight: ['css:[data-testid="net-tx"]', target.counter(1, 'kicks')],
      check: {
        kind: 'number',
        question: 'For the whole upload: frames on the wire per tx chain? (Δ NIC tx frames ÷ Δ transmitq requests since Run, rounded)',
        verify(v, n) {
          const s = v.start;
          const q = queueOf(v.fn, 1);
          const sq = s ? queueOf(s.fn, 1) : undefined;
          if (!s || !q || !sq) return no('Run the upload (previous step) first: the counts are since its Run.');
          const frames = stat(v.devices, 'net', 'txFrames') - stat(s.devices, 'net', 'txFrames');
          const chains = q.counters.requests - sq.counters.requests;
          if (chains < 10) return no('Not enough traffic since Run: run the upload (previous step) and come back.');
          return near(n, frames / chains, 0.25, 1) ? ok(`${frames} frames from ${chains} chains.`) : no(`${frames} frames went out for ${chains} chains since Run: divide.`, 'css:[data-testid="net-tx"]');
        },
      },
    },
  ],
};

