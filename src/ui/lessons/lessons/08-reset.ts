import { DeviceStatus } from '../../../virtio/constants.ts';
import { target } from '../../inspector/targets.ts';
import { clickStatusBit, clickWhere, no, ok, queueOf, typeValue, usedOf } from '../checks.ts';
import type { Lesson, LessonView } from '../types.ts';

const DRIVER = '/sys/bus/virtio/drivers/virtio_rng';
/** device_status is byte 0x14 of the common configuration, at the start of BAR0 (§4.1.4.3). */
const statusPort = (v: LessonView) => `$((0x${(v.fn.pci?.bar0 ?? 0).toString(16)} + 0x14))`;
const poke = (v: LessonView, value: number) => `printf '\\${value.toString(8).padStart(3, '0')}' | dd of=/dev/port bs=1 seek=${statusPort(v)} 2>/dev/null`;
const RNG_STATUS = '$(( $(cut -d" " -f1 /sys/bus/pci/devices/0000:00:03.0/resource | head -1) + 0x14 ))';

export const reset: Lesson = {
  id: 'reset',
  title: 'Reset and errors',
  summary: 'What DEVICE_NEEDS_RESET means, a reset by hand, breaking the status protocol on purpose, and a driver reset bringing the device back.',
  // Unless the device is live again (status 15), rebind: the driver's remove resets it.
  restore: `[ "$(dd if=/dev/port bs=1 skip=${RNG_STATUS} count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" = 15 ] || { echo virtio0 > ${DRIVER}/unbind; echo virtio0 > ${DRIVER}/bind; }`,
  steps: [
    {
      title: 'When the device gives up',
      text: `A device that hits an error it cannot recover from — the driver broke the protocol, or the device itself failed — sets DEVICE_NEEDS_RESET in device_status and sends a configuration-change interrupt. From then on it serves nothing until the driver resets it (writes 0) and initialises it again.`,
      cite: ['§2.1.1', '§2.1.2 Device Requirements: Device Status Field', '§4.1.4.5 ISR status'],
      device: 'rng',
      highlight: [target.statusBit('DEVICE_NEEDS_RESET'), target.statusBit('FAILED')],
      check: clickStatusBit('Click the status bit the device sets when it needs a reset.', 'DEVICE_NEEDS_RESET', 'FAILED is set by the driver when it gives up. Look for the bit named after what the device needs.'),
    },
    {
      title: 'A reset by hand',
      text: `Writing 0 to device_status is a reset: the device drops its queues and negotiated features and goes back to its power-on state. Here we write it ourselves, through \`/dev/port\` at BAR0 + 0x14, behind the back of virtio_rng, which stays bound and does not know. (A real driver resets the same way, in \`virtio_reset_device\`.)`,
      cite: ['§2.4 Device Reset', '§2.1.1', '§4.1.4.3.1', 'Linux: virtio_reset_device, vp_reset'],
      device: 'rng',
      action: { kind: 'run', command: (v) => poke(v, 0) },
      highlight: [target.resets, target.statusValue],
      check: typeValue('How many resets has virtio-rng had now?', target.resets, (v) => v.fn.resets, 'Read the outlined `resets` count in the rng tab’s second line: it went up by one.'),
    },
    {
      title: 'Break the protocol',
      text: `Now play a buggy driver: write 7 (ACKNOWLEDGE | DRIVER | DRIVER_OK) and skip FEATURES_OK. A device must not go live without negotiated features, so ours refuses: it sets DEVICE_NEEDS_RESET and raises a configuration interrupt, which virtio_rng's interrupt handler takes (it reads the ISR byte: bit 1, configuration change). The timeline shows the error and the config-interrupt.`,
      cite: ['§3.1.1', '§2.1.2', '§4.1.4.5'],
      device: 'rng',
      action: { kind: 'run', command: (v) => poke(v, 7) },
      highlight: (v) => {
        const error = [...v.events].reverse().find((e) => e.kind === 'error');
        return error ? [target.statusBit('DEVICE_NEEDS_RESET'), target.event(error.seq)] : target.statusBit('DEVICE_NEEDS_RESET');
      },
      check: clickWhere('Which status bit did the device set? Click it.', (v, t) => {
        if (!(v.fn.status & DeviceStatus.DEVICE_NEEDS_RESET)) return no('DEVICE_NEEDS_RESET is not set: Run the command (after the reset of the previous step).', target.statusBit('DEVICE_NEEDS_RESET'));
        if (t.kind === 'status' && t.args[0] === 'DEVICE_NEEDS_RESET') return ok(`Red now. The timeline says why: ${v.fn.lastError ?? 'an error event'}.`);
        return no('Look for the red bit in the status row.', target.statusBit('DEVICE_NEEDS_RESET'));
      }),
    },
    {
      title: 'Recover: a driver reset',
      text: `Only a reset clears DEVICE_NEEDS_RESET, followed by a proper initialisation. Linux 6.1 does not do that by itself when it sees the bit, so we do it by hand: unbinding runs virtio_rng's remove, which resets the device (writes 0); binding runs its probe: ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK, as in lesson 1.`,
      cite: ['§2.1.2', '§2.4 Device Reset', '§3.1.1', 'Linux: virtio_dev_remove, virtio_dev_probe'],
      device: 'rng',
      action: { kind: 'run', command: `echo virtio0 > ${DRIVER}/unbind; echo virtio0 > ${DRIVER}/bind` },
      highlight: [target.statusValue, target.resets],
      check: {
        kind: 'number',
        question: 'What is device_status now? (hex is fine)',
        verify(v, n) {
          if (v.fn.status & DeviceStatus.DEVICE_NEEDS_RESET) return no('DEVICE_NEEDS_RESET is still set: Run the command to unbind and bind the driver.', target.statusValue);
          if (n !== v.fn.status) return no('Read the hex value after device_status.', target.statusValue);
          return v.fn.status === 0x0f ? ok('0x0f: ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK — live again.') : ok();
        },
      },
    },
    {
      title: 'It serves again',
      text: `Read 16 random bytes: the driver posts a buffer, kicks, and the device fills it and returns it in the used ring.`,
      cite: ['§5.4 Entropy Device', '§2.7.8'],
      device: 'rng',
      action: { kind: 'run', command: 'head -c 16 /dev/hwrng | od -An -tx1' },
      highlight: (v) => {
        const u = usedOf(queueOf(v.fn, 0));
        return u ? [target.usedEntry(0, (u.idx - 1) & 0xffff), target.usedIdx(0)] : target.usedIdx(0);
      },
      check: clickWhere('Click the newest used element of the rng requestq.', (v, t) => {
        const u = usedOf(queueOf(v.fn, 0));
        if (!u || u.entries.length === 0) return no('Nothing used yet: Run the command.');
        const newest = (u.idx - 1) & 0xffff;
        if (t.kind === 'used' && t.index === newest) return ok(`id ${u.entries.at(-1)!.id}, len ${u.entries.at(-1)!.len}: bytes written by the device.`);
        return no('The newest element sits just below the ◀ used.idx row (its idx is used.idx − 1).', target.usedEntry(0, newest));
      }),
    },
  ],
};
