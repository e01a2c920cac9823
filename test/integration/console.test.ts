/**
 * virtio-console with the real guest in Node: Linux's virtio_console drives our device, the
 * guest agent serves run() on its named port, hvc0 and a second named port carry bytes both
 * ways, and without the device run() falls back to the serial console.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VirtioConsole } from '../../src/devices/console/console.ts';
import { AGENT_PORT, outputBytes } from '../../src/vm/console-session-agent.ts';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';

const TEST_PORT = 'org.virtio-lab.test';
const dec = new TextDecoder();

/** Resolves once `check` says yes about what arrived, or rejects after `ms`. */
function until(check: () => boolean, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (check()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error('timed out waiting for the port'));
      }
    }, 20);
  });
}

describe('virtio-console: real guest', () => {
  let vm: NodeVm;
  let device: VirtioConsole;

  beforeAll(async () => {
    vm = await startNodeVm({ devices: { console: { ports: [AGENT_PORT, TEST_PORT] } } });
    await vm.session.ready;
    device = vm.machine.devices.console!.device as VirtioConsole;
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('is driven by virtio_console, with named ports in sysfs, and the agent has the run() port open at ready', async () => {
    expect(vm.session.usesAgent).toBe(true);
    expect(device.port(AGENT_PORT)!.guestOpen).toBe(true);
    const r = await vm.session.run('for p in /sys/class/virtio-ports/*; do echo "${p##*/} $(cat $p/name 2>/dev/null)"; done; basename $(readlink /sys/class/virtio-ports/vport*p1/device/driver)');
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/^vport\d+p0 \nvport\d+p1 org\.virtio-lab\.run\nvport\d+p2 org\.virtio-lab\.test\nvirtio_console\n$/);
    expect(device.stats.controlIgnored).toBe(0);
    expect(vm.deviceErrors).toEqual([]);
  });

  it('runs commands over the port: nothing in the serial log, stderr interleaved, bytes 1..255 exact', async () => {
    const before = vm.session.log();
    expect(await vm.session.run('echo out; echo err >&2; echo out2; exit 3')).toEqual({ output: 'out\nerr\nout2\n', status: 3 });
    const octal = Array.from({ length: 255 }, (_, i) => `\\${(i + 1).toString(8).padStart(3, '0')}`).join('');
    const all = await vm.session.run(`printf '${octal}'`);
    expect([...outputBytes(all.output)]).toEqual(Array.from({ length: 255 }, (_, i) => i + 1));
    expect(vm.session.log()).toBe(before);
    expect(vm.session.log()).not.toContain('__VL_');
  });

  it("runs the lab's subshell requests (F) with the same contract: output, status, exit, and the agent goes on", async () => {
    const before = vm.session.log();
    expect(await vm.session.run('echo out; echo err >&2; exit 4', { subshell: true })).toEqual({ output: 'out\nerr\n', status: 4 });
    expect(await vm.session.run('false || echo second', { subshell: true })).toEqual({ output: 'second\n', status: 0 });
    // A subshell: what the command changes (the agent's own variables too) stays in it.
    expect(await vm.session.run('cmd=broken; id=; pgid=; X=1; cd /tmp; echo set', { subshell: true })).toEqual({ output: 'set\n', status: 0 });
    expect(await vm.session.run('pwd; echo "[$X]"')).toEqual({ output: '/root\n[]\n', status: 0 });
    // A cancel ends the subshell, and the next request runs.
    await expect(vm.session.run('while :; do :; done', { timeoutMs: 1000, subshell: true })).rejects.toThrow(/timed out after 1000 ms/);
    expect(await vm.session.run('echo after', { subshell: true })).toEqual({ output: 'after\n', status: 0 });
    expect(vm.session.log()).toBe(before);
  });

  it('times out, kills what the command started, and the next command runs', async () => {
    await expect(vm.session.run('sleep 300 & sleep 200', { timeoutMs: 1500 })).rejects.toThrow(/timed out after 1500 ms/);
    // Killed at once; the dead may linger as zombies until init reaps them, so look a few times.
    const r = await vm.session.run('for i in $(seq 20); do pidof sleep >/dev/null || break; sleep 0.1; done; pidof sleep || echo none');
    expect(r.output).toBe('none\n');
    // Each command is a fresh shell: state does not carry over, files do.
    await vm.session.run('cd /tmp; X=1; echo kept > /tmp/kept');
    expect(await vm.session.run('pwd; echo "[$X]"; cat /tmp/kept')).toEqual({ output: '/root\n[]\nkept\n', status: 0 });
  });

  it('a cancel read together with its command (the guest stood still meanwhile) still kills it', async () => {
    // While the CPU is stopped the request and its cancel both wait in the port: the agent
    // reads them back to back, before the command's child has made its own process group.
    await vm.machine.pause();
    const cancelled = vm.session.run('sleep 300 & while :; do sleep 0.05; done', { timeoutMs: 50 });
    await expect(cancelled).rejects.toThrow(/timed out after 50 ms/);
    vm.machine.resume();
    const r = await vm.session.run('for i in $(seq 20); do pidof sleep >/dev/null || break; sleep 0.1; done; pidof sleep || echo none', { timeoutMs: 20_000 });
    expect(r).toEqual({ output: 'none\n', status: 0 });
  });

  it('carries bytes both ways on a second named port (echo and head in the guest)', async () => {
    const port = device.port(TEST_PORT)!;
    const got: Uint8Array[] = [];
    port.onData = (b) => got.push(b);
    const opens: boolean[] = [];
    port.onOpen = (open) => opens.push(open);
    const dev = (await vm.session.run('for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name 2>/dev/null)" = org.virtio-lab.test ] && echo /dev/${p##*/}; done')).output.trim();
    expect(dev).toMatch(/^\/dev\/vport\d+p2$/);
    expect((await vm.session.run(`echo guest-to-host > ${dev}`)).status).toBe(0);
    expect(dec.decode(got[0])).toBe('guest-to-host\n');
    expect(opens).toEqual([true, false]);
    // The guest discards port data while nobody has the port open: write once head has it.
    await vm.session.run(`head -n 1 ${dev} > /tmp/from-host 2>&1 &`);
    await until(() => port.guestOpen);
    expect(port.write(new TextEncoder().encode('host-to-guest\nrest\n'))).toBe(true);
    await until(() => !port.guestOpen);
    expect((await vm.session.run('cat /tmp/from-host')).output).toBe('host-to-guest\n');
  });

  it('echoes on hvc0 without a login: guest → host, and a line typed by the host read back by the guest', async () => {
    const hvc = device.ports[0];
    let seen = '';
    hvc.onData = (b) => (seen += dec.decode(b));
    expect((await vm.session.run('echo hvc-hello > /dev/hvc0')).status).toBe(0);
    expect(seen).toContain('hvc-hello\r\n'); // a tty: LF goes out as CR LF
    await vm.session.run('head -n 1 /dev/hvc0 > /tmp/from-hvc 2>&1 &');
    await vm.session.run('sleep 0.3'); // head is reading
    hvc.write(new TextEncoder().encode('typed-line\n'));
    await until(() => seen.includes('typed-line')); // the tty echoes it
    const r = await vm.session.run('for i in $(seq 50); do [ -s /tmp/from-hvc ] && break; sleep 0.1; done; cat /tmp/from-hvc');
    expect(r.output).toBe('typed-line\n');
  });
});

describe('virtio-console off: run() over the serial console', () => {
  let vm: NodeVm;

  beforeAll(async () => {
    vm = await startNodeVm({ devices: { console: false } });
    await vm.session.ready;
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('has no port, types into the serial shell, and keeps the same result contract', async () => {
    expect(vm.machine.devices.console).toBeUndefined();
    expect(vm.session.usesAgent).toBe(false);
    expect(await vm.session.run('echo out; echo err >&2; (exit 3)')).toEqual({ output: 'out\nerr\n', status: 3 });
    expect(vm.session.log()).toContain('__VL_S');
    expect(vm.session.log()).toContain('no virtio-console port org.virtio-lab.run');
  });
});
