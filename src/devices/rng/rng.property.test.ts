/** virtio-rng's fuzz properties, bounded (properties.ts). */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { rngProperties } from './properties.ts';

describeProperties('virtio-rng properties', rngProperties(), 50);
