import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { deviceStateProperties } from './device-state-properties.ts';

describeProperties('device-state parser', deviceStateProperties(), 40);
