/** virtio-console under random guest behaviour; the properties live in ./properties.ts. */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { consoleProperties } from './properties.ts';

describeProperties('virtio-console properties', consoleProperties(), 150);
