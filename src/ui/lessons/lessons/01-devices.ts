import { DeviceStatus } from '../../../virtio/constants.ts';
import { target } from '../../inspector/targets.ts';
import { clickWhere, newestEvent, no, ok, typeValue } from '../checks.ts';
import type { Lesson } from '../types.ts';

const RNG_PCI = '/sys/bus/pci/devices/0000:00:03.0';
const DRIVER = '/sys/bus/virtio/drivers/virtio_rng';

export const devices: Lesson = {
  id: 'devices',
  title: 'Meet the devices',
  summary: 'PCI discovery, BAR0 and its capabilities, device status and feature negotiation, watched while the driver rebinds.',
  restore: `[ -e ${DRIVER}/virtio0 ] || echo virtio0 > ${DRIVER}/bind`,
  steps: [
    {
      title: 'A virtio function on the PCI bus',
      text: `Linux finds our devices like any PCI device: vendor \`0x1af4\`, device \`0x1040\` + the virtio device type (4 = entropy source, so \`0x1044\`). The virtio-pci driver claims every function with that vendor and reads its PCI capability list, which says where in BAR0 the common configuration, the notify area, the ISR byte and the device configuration live.

This lab puts all four in one I/O-port BAR0. The inspector's rng tab shows where the host placed it.`,
      cite: ['§4.1.2 PCI Device Discovery', '§4.1.4 Virtio Structure PCI Capabilities', 'Linux: virtio_pci_modern_probe'],
      device: 'rng',
      action: { kind: 'run', command: `cat ${RNG_PCI}/vendor ${RNG_PCI}/device; head -1 ${RNG_PCI}/resource` },
      highlight: target.bar0,
      check: typeValue(
        'What is virtio-rng’s BAR0 base address? (hex like 0xc100 is fine)',
        target.bar0,
        (v) => v.fn.pci?.bar0,
        'Read it after `@` in the outlined BAR0 field, or as the first number the guest printed from `resource` (the start of the I/O range).',
      ),
    },
    {
      title: 'device_status: how far the driver got',
      text: `The driver walks the device through initialisation by setting bits in \`device_status\`: ACKNOWLEDGE (I found you), DRIVER (I can drive you), FEATURES_OK (I accept these features) and finally DRIVER_OK (I am ready: the queues are live). Bits only accumulate until a reset, which is the driver writing 0.

Green bits are set now.`,
      cite: ['§2.1 Device Status Field', '§3.1.1 Driver Requirements: Device Initialization'],
      device: 'rng',
      highlight: Object.keys(DeviceStatus).map(target.statusBit),
      check: clickWhere('Click the status bit that says the driver is set up and the device is live.', (v, t) => {
        if (t.kind !== 'status') return no('Click one of the status bits in the top row of the rng tab.', target.statusBit('DRIVER_OK'));
        if (t.args[0] !== 'DRIVER_OK') return no(`${t.args[0]} is an earlier (or an error) stage. The last bit the driver sets, after its queues are ready, is the one to click.`, target.statusBit('DRIVER_OK'));
        return v.fn.status & DeviceStatus.DRIVER_OK ? ok('DRIVER_OK: from here the device may use its queues.') : ok('DRIVER_OK, though it is off right now: the driver is not bound.');
      }),
    },
    {
      title: 'Unbind the driver',
      text: `Unbinding calls the driver's remove: virtio_rng resets the device (writes 0 to \`device_status\`, §4.1.4.3.1), and the virtio core then sets ACKNOWLEDGE again, because the device is still there, just without a driver.

Watch the status bits and the timeline.`,
      cite: ['§2.1.1 Device Status: reset', '§4.1.4.3.1', 'Linux: virtio_dev_remove, virtio_reset_device'],
      device: 'rng',
      action: { kind: 'run', command: `echo virtio0 > ${DRIVER}/unbind` },
      highlight: target.statusValue,
      check: typeValue(
        'What is `device_status` now? (the hex value beside it)',
        target.statusValue,
        (v) => v.fn.status,
        'Read the hex number after `device_status` (it changes after you Run: 0x0f is the bound state). After the reset, only ACKNOWLEDGE (bit value 1) is back.',
      ),
    },
    {
      title: 'Bind it again: the negotiation',
      text: `Binding runs the driver's probe: DRIVER, then the features (it reads \`device_feature\`, writes the subset it understands to \`driver_feature\`), then FEATURES_OK, which the driver reads back — a device may refuse. Then it sets up the queue and sets DRIVER_OK.

Each change is a \`status\` event in the timeline (newest first).`,
      cite: ['§3.1.1 steps 1–8', '§2.2 Feature Bits', 'Linux: virtio_dev_probe, virtio_features_ok'],
      device: 'rng',
      action: { kind: 'run', command: `echo virtio0 > ${DRIVER}/bind` },
      highlight: (v) => newestEvent(v, (e) => e.kind === 'status' && (Number(e.fields?.status) & DeviceStatus.FEATURES_OK) !== 0 && !(Number(e.fields?.status) & DeviceStatus.DRIVER_OK)),
      check: clickWhere('In the timeline, click the status event where feature negotiation finished (FEATURES_OK set, DRIVER_OK not yet).', (v, t) => {
        if (t.kind !== 'event') return no('Click a row of the timeline: the `status` rows show each value the driver wrote.', target.timeline);
        const e = v.events.find((x) => x.seq === t.index);
        if (!e || e.kind !== 'status') return no('That row is not a status change. Look for rows whose kind is `status`.', target.timeline);
        const s = Number(e.fields?.status ?? 0);
        if (!(s & DeviceStatus.FEATURES_OK)) return no('In that write FEATURES_OK is not set yet: the driver had not accepted features then.');
        if (s & DeviceStatus.DRIVER_OK) return no('That is the last step, DRIVER_OK. Negotiation finished one write earlier.');
        return ok('After this write the driver read FEATURES_OK back: the device accepted its features.');
      }),
    },
    {
      title: 'Offered versus accepted',
      text: `Each chip is a feature bit the device offered (\`device_feature\`). A green chip was accepted: the driver wrote it back in \`driver_feature\`. A driver leaves out bits it does not know; a struck-through chip would be one offered and declined. VERSION_1 must be accepted: this device has no legacy interface.`,
      cite: ['§2.2 Feature Bits', '§6 Reserved Feature Bits', 'Linux: virtio_dev_probe (driver_features)'],
      device: 'rng',
      highlight: (v) => v.fn.features.map((f) => target.feature(f.name)),
      check: typeValue(
        'How many feature bits did the driver accept?',
        target.feature('VIRTIO_F_VERSION_1'),
        (v) => v.fn.features.filter((f) => f.accepted).length,
        'Count the green chips under the status line (hover one for its meaning).',
      ),
    },
  ],
};
