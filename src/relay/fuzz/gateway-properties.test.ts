import { describeProperties } from '../../virtio/testing/describe-properties.ts';
import { gatewayProperties } from './gateway-properties.ts';

describeProperties('relay switch + gateway under garbage', gatewayProperties(), 150);
