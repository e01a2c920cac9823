import { describe, expect, it } from 'vitest';
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { transportSubjectProperty, TRANSPORT_MEM } from '../../virtio/testing/transport-properties.ts';
import { registeredDevices } from '../registry.ts';
import { deviceTransportSubjects } from './transport-subjects.ts';

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
});

describeProperties(
  'pci transport register fuzzing of the real devices',
  subjects.map(({ subject }) => transportSubjectProperty(subject)),
  150,
);
