/**
 * Our functions' PCI config space as the real guest reads it (Linux's conf1 accesses through
 * v86's 0xcf8/0xcfc, routed by the adapter to the functions' hooks): the capability list with
 * the VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9), a subsystem id ≥ 0x40 (§4.1.2.1), and the
 * drivers still bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';

describe('PCI config space in the real guest', () => {
  let vm: NodeVm;

  beforeAll(async () => {
    vm = await startNodeVm();
    await vm.session.ready;
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('every virtio function shows the PCI_CFG capability and a subsystem id ≥ 0x40', async () => {
    const script =
      'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x1af4 ] || continue; ' +
      'echo "$(basename $d) $(basename $(readlink $d/driver)) $(od -An -tx1 -v -N256 $d/config | tr -d "\\n")"; done';
    const r = await vm.session.run(script);
    expect(r.status).toBe(0);
    const lines = r.output.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2); // rng and console at least
    for (const line of lines) {
      const [name, driver, ...hex] = line.trim().split(/\s+/);
      const config = hex.map((h) => parseInt(h, 16));
      expect(config, name).toHaveLength(256);
      expect(driver, name).toBe('virtio-pci');
      expect(config[0x2e]! | (config[0x2f]! << 8), name).toBeGreaterThanOrEqual(0x40);
      const types: number[] = [];
      for (let at = config[0x34]!, hops = 0; at !== 0 && hops < 16; at = config[at + 1]!, hops++) if (config[at] === 0x09) types.push(config[at + 3]!);
      expect(types, name).toEqual(expect.arrayContaining([1, 2, 3, 5]));
    }
    expect(vm.deviceErrors).toEqual([]);
  });
});
