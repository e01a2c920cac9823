/** virtio-blk under random traffic; the properties live in testing/blk-properties.ts. */
import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { blkProperties } from './properties.ts';

describeProperties('virtio-blk properties', blkProperties(), 200);
