import { describe, expect, it } from 'vitest';
import { bootProfile, imageIdentity, readLabState } from './lab-states.ts';
import { encodeSnapshot } from './snapshot/format.ts';
import { SnapshotError } from './snapshot/snapshot-error.ts';
import { loadZstd } from './snapshot/zstd-node.ts';
import type { GuestManifest } from './guest-image.ts';

const manifest: GuestManifest = {
  cmdline: 'console=ttyS0',
  memoryMiB: 128,
  files: [
    { role: 'bios', file: 'bios.bin', sha256: 'a'.repeat(64), size: 1, source: { package: 'p', version: '1' } },
    { role: 'kernel', file: 'bzImage', sha256: 'b'.repeat(64), size: 1, source: { package: 'p', version: '1' } },
    { role: 'initrd', file: 'initrd', sha256: 'c'.repeat(64), size: 1, source: { package: 'p', version: '1' } },
  ],
};

async function stateWith(deviceState: unknown, imageSha256: string): Promise<Uint8Array> {
  return encodeSnapshot(
    { kind: 'boot', name: 'boot', imageSha256, memoryMiB: 128, ring: 'split', functions: ['virtio-rng'], v86State: new Uint8Array(1024).fill(1), deviceState },
    await loadZstd(),
  );
}

describe('lab states', () => {
  it("an image's identity covers its files, command line and RAM, not the files' order", async () => {
    const id = await imageIdentity(manifest, manifest.cmdline);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(await imageIdentity({ ...manifest, files: [...manifest.files].reverse() }, manifest.cmdline)).toBe(id);
    expect(await imageIdentity(manifest, `${manifest.cmdline} virtio_lab.disk=late`)).not.toBe(id);
    expect(await imageIdentity({ ...manifest, memoryMiB: 256 }, manifest.cmdline)).not.toBe(id);
    const kernel = { ...manifest.files[1]!, sha256: 'd'.repeat(64) };
    expect(await imageIdentity({ ...manifest, files: [manifest.files[0]!, kernel, manifest.files[2]!] }, manifest.cmdline)).not.toBe(id);
  });

  it('a boot profile differs with the functions and the ring layout', async () => {
    const id = 'e'.repeat(64);
    const a = await bootProfile(id, ['virtio-blk', 'virtio-rng'], 'split');
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(await bootProfile(id, ['virtio-blk', 'virtio-rng'], 'split')).toBe(a);
    expect(await bootProfile(id, ['virtio-rng'], 'split')).not.toBe(a);
    expect(await bootProfile(id, ['virtio-blk', 'virtio-rng'], 'packed')).not.toBe(a);
  });

  it("reads the screen and the functions' state back", async () => {
    const id = 'f'.repeat(64);
    const screen = btoa('virtio-lab:~# ');
    const s = readLabState(await stateWith({ functions: { x: 1 }, screen }, id), id, await loadZstd());
    expect(new TextDecoder().decode(s.screen)).toBe('virtio-lab:~# ');
    expect(s.functions).toEqual({ x: 1 });
  });

  it('refuses a device section that is not the lab’s, with a SnapshotError', async () => {
    const id = 'f'.repeat(64);
    const zstd = await loadZstd();
    for (const bad of [null, [], { functions: {} }, { screen: 'AAAA' }, { functions: {}, screen: 5 }, { functions: {}, screen: '%%%' }, { functions: {}, screen: 'A'.repeat(200_000) }]) {
      const bytes = await stateWith(bad, id);
      expect(() => readLabState(bytes, id, zstd), JSON.stringify(bad)?.slice(0, 40)).toThrow(SnapshotError);
    }
  });
});
