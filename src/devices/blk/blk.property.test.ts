/** virtio-blk under random traffic; the properties live in properties.ts and bounded-work.ts. */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { blkProperties } from './properties.ts';

const all = blkProperties();
const bounded = (name: string) => name.includes('bounded work');
describeProperties('virtio-blk properties', all.filter((p) => !bounded(p.name)), 200);
// Each case moves up to a few hundred MiB through the meter: fewer runs in the unit slice.
describeProperties('virtio-blk bounded work', all.filter((p) => bounded(p.name)), 25);
