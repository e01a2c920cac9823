/** virtio-net under random traffic; the properties live in testing/net-properties.ts. */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { netProperties } from './properties.ts';

describeProperties('virtio-net properties', netProperties(), 150);
