import { describeProperties } from './describe-properties.ts';
import { virtioProperties } from './properties.ts';

describeProperties('virtio split-ring properties', virtioProperties(), 300);
