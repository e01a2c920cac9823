/** The real guest on the real v86 in this Node process: the machinery `npm run vm` uses. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB_CMDLINE } from '../../src/vm/machine.ts';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';

describe('Node runner: real guest', () => {
  let vm: NodeVm;

  beforeAll(async () => {
    vm = await startNodeVm();
    await vm.session.ready; // resolves at the first shell prompt (boot time: npm run bench:boot)
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it("boots our kernel with the lab machine's command line", () => {
    const log = vm.session.log();
    expect(log).toContain('Linux version 6.1');
    // The manifest's line plus the machine's own addition: this is the lab's Machine, not a bare v86.
    expect(log).toMatch(new RegExp(`Kernel command line: .*${LAB_CMDLINE}`));
  });

  it('runs commands with output and exit status', async () => {
    const r = await vm.session.run('uname -r');
    expect(r.status).toBe(0);
    expect(r.output.trim()).toMatch(/^6\.1\.\d+/);
    expect((await vm.session.run('false')).status).toBe(1);
    expect(await vm.session.run('echo $((6*7)); exit_code=3; (exit $exit_code)')).toEqual({ output: '42\n', status: 3 });
  });

  it('has the tools the later issues rely on', async () => {
    const fio = await vm.session.run('fio --version');
    expect(fio.status).toBe(0);
    expect(fio.output).toMatch(/^fio-3\.\d+/);
    expect((await vm.session.run('hostname')).output.trim()).toBe('virtio-lab');
  });
});
