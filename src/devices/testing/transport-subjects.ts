/**
 * Every registered device (../registry.ts) as a subject of the transport fuzzer
 * (virtio/testing/transport-properties.ts). Each descriptor loads its own subject
 * (`fuzzSubject()`, kept out of the page's bundle), so a new device is fuzzed by being registered,
 * on both ring layouts (its subject honours `create({ ring })`).
 */
import type { NamedProperty } from '../../virtio/testing/invariants.ts';
import { transportSubjectProperty, type TransportSubject } from '../../virtio/testing/transport-properties.ts';
import type { DeviceDescriptor } from '../descriptor.ts';
import { registeredDevices } from '../registry.ts';

/** Each registered device's descriptor with its fuzz subject, in registry order. */
export function deviceTransportSubjects(): Promise<Array<{ descriptor: DeviceDescriptor; subject: TransportSubject }>> {
  return Promise.all(registeredDevices.map(async (descriptor) => ({ descriptor, subject: await descriptor.fuzzSubject() })));
}

/** The pci campaign's device properties: each registered device on split rings, then offering packed ones. */
export async function deviceTransportProperties(): Promise<NamedProperty[]> {
  return (await deviceTransportSubjects()).flatMap(({ subject }) => (['split', 'packed'] as const).map((ring) => transportSubjectProperty(subject, ring)));
}
