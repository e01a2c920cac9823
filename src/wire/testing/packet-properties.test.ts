import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { packetProperties } from './packet-properties.ts';

describeProperties('packet parsers on random frames', packetProperties(), 500);
