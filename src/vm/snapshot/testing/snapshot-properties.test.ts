import { describeProperties } from '../../../virtio/testing/describe-properties.ts';
import { snapshotProperties } from './snapshot-properties.ts';

describeProperties('state file parser', await snapshotProperties(), 100);
