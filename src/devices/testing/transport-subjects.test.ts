import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { deviceTransportProperties } from './transport-subjects.ts';

describeProperties('pci transport register fuzzing of the real devices', deviceTransportProperties(), 150);
