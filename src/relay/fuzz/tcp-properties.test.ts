import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { tcpNatProperties } from './tcp-properties.ts';

describeProperties('relay TCP NAT under garbage', tcpNatProperties(), 150);
