/** virtio-console under random guest behaviour; the properties live in properties.ts and bounded-work.ts. */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { consoleProperties } from './properties.ts';

const all = consoleProperties();
const bounded = (name: string) => name.includes('bounded work');
describeProperties('virtio-console properties', all.filter((p) => !bounded(p.name)), 150);
// Each case moves megabytes through the meter: fewer runs in the unit slice.
describeProperties('virtio-console bounded work', all.filter((p) => bounded(p.name)), 25);
