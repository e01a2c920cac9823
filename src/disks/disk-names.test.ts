import { describe, expect, it } from 'vitest';
import { DiskError, memoryDiskBytes, validateDiskName } from './disk-names.ts';

describe('memory disk names', () => {
  it('"mem:N" is N MiB in memory', () => {
    expect(memoryDiskBytes('mem:256')).toBe(256 * 1024 * 1024);
    expect(memoryDiskBytes('mem:1')).toBe(1024 * 1024);
  });

  it('an OPFS disk name is not a memory disk', () => {
    expect(memoryDiskBytes('lab')).toBeUndefined();
    expect(memoryDiskBytes('memory')).toBeUndefined();
  });

  it.each(['mem:', 'mem:0', 'mem:4096', 'mem:-1', 'mem:1.5', 'mem:x'])('refuses %s with a disk-invalid error', (name) => {
    expect(() => memoryDiskBytes(name)).toThrow(DiskError);
    try {
      memoryDiskBytes(name);
    } catch (e) {
      expect((e as DiskError).kind).toBe('disk-invalid');
    }
  });

  it('no OPFS disk can be named like a memory disk', () => {
    expect(() => validateDiskName('mem:256')).toThrow(DiskError);
  });
});
