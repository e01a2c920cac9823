import { describeProperties } from './describe-properties.ts';
import { transportProperties } from './transport-properties.ts';

describeProperties('pci transport register fuzzing', transportProperties(), 300);
