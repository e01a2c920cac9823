import { describe, expect, it } from 'vitest';
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { TRANSPORT_MEM } from '../../virtio/testing/transport-properties.ts';
import { registeredDevices } from '../registry.ts';
import { deviceTransportProperties, deviceTransportSubjects } from './transport-subjects.ts';

const subjects = await deviceTransportSubjects();

describe('the transport fuzzer covers every registered device', () => {
  it('each registered device has a fuzz subject that drives a device of its own type', () => {
    expect(subjects.map(({ descriptor }) => descriptor.kind)).toEqual(registeredDevices.map((d) => d.kind));
    for (const { descriptor, subject } of subjects) {
      // A subject borrowed from another device (or a stub) would fuzz the wrong device.
      const rig = subject.create({ barKind: 'io', memorySize: TRANSPORT_MEM, byteAccess: false, deferred: false });
      expect(descriptor.owns(rig.t.fn.device), `${descriptor.kind}'s fuzz subject`).toBe(true);
      expect(subject.name).toBe(descriptor.name);
    }
  });

  it('each subject honours create({ ring }): packed offered, every queue packed after a bring-up', () => {
    for (const { descriptor, subject } of subjects) {
      for (const ring of ['split', 'packed'] as const) {
        const { t } = subject.create({ barKind: 'io', memorySize: TRANSPORT_MEM, byteAccess: false, deferred: false, ring });
        const queues = t.initRings();
        expect(queues.map((q) => q.layout), `${descriptor.kind} (${ring})`).toEqual(queues.map(() => ring));
        for (let i = 0; i < t.fn.numQueues; i++) expect(t.fn.queue(i)?.layout, `${descriptor.kind} queue ${i} (${ring})`).toBe(ring);
      }
    }
  });

  it('the pci campaign has a split and a packed property for every registered device', async () => {
    const names = (await deviceTransportProperties()).map((p) => p.name);
    expect(names).toEqual(registeredDevices.flatMap((d) => [`pci transport: ${d.name}`, `pci transport: ${d.name} (packed)`]));
  });
});

describeProperties('pci transport register fuzzing of the real devices, both ring layouts', await deviceTransportProperties(), 150);
