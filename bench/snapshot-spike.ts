/**
 * Spike for instant start (issue #14, next phase): how big is v86's own saved state of the
 * booted lab, how long do save and restore take, and how soon does a restored guest answer
 * on its serial console. Real v86 and the real guest in Node, booted with its disk attached
 * late (virtio_lab.disk=late: /dev/vda present, not read or mounted).
 *
 *   node --import tsx bench/snapshot-spike.ts [--levels 1,3,9,19]
 *
 * Compression: @bokuweb/zstd-wasm (zstd compiled to wasm; the same module runs in a page or
 * worker and in Node; v86's restore_state reads a zstd frame itself). Not a dependency yet:
 * ZSTD_WASM=/path/to/node_modules/@bokuweb/zstd-wasm points at an installed copy.
 *
 * v86's state covers its CPU, RAM and its own devices (PIC, APIC, PIT, UART, PCI config
 * spaces, IDE, ...), not our virtio functions: transport registers, queue addresses and
 * device-side indices live in TypeScript objects. The last step shows what that means: a
 * restored guest's serial shell answers, but its virtio devices are fresh (reset) ones.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FileBlockBackend } from '../src/backends/file-block-backend.ts';
import { AGENT_PORT } from '../src/vm/console-session-agent.ts';
import { Machine } from '../src/vm/machine.ts';
import { defaultGuestDir, loadGuestImageFromDir, startNodeVm } from '../src/vm/node/node-machine.ts';
import { lateDiskGuestDir, templateDiskFile } from '../src/vm/snapshot/node-guest.ts';

interface Zstd {
  init(): Promise<void>;
  compress(buf: Uint8Array, level?: number): Uint8Array;
  decompress(buf: Uint8Array): Uint8Array;
}

const args = process.argv.slice(2);
const levelsArg = args.indexOf('--levels');
const levels = (levelsArg >= 0 ? args[levelsArg + 1] : '1,3,9').split(',').map(Number);
const DISK_MIB = 128;
const MiB = 1024 * 1024;

const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;
const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;

/** The emulator object behind a Machine (spike only: the adapter keeps it private). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const emulatorOf = (m: Machine): any => (m as any).host.emulator;

async function loadZstd(): Promise<Zstd> {
  const where = process.env.ZSTD_WASM ?? '@bokuweb/zstd-wasm';
  const mod = (await import(where.startsWith('/') ? createRequire(import.meta.url).resolve(where) : where)) as Zstd & { default?: Zstd };
  const z = mod.default && 'compress' in mod.default ? mod.default : mod;
  await z.init();
  return z;
}

/** Waits until `pattern` shows in what `text()` returns, or fails after `limitMs`. */
async function waitFor(text: () => string, pattern: RegExp, limitMs: number): Promise<boolean> {
  const t0 = performance.now();
  while (!pattern.test(text())) {
    if (performance.now() - t0 > limitMs) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

const zstd = await loadZstd();
const dir = mkdtempSync(path.join(os.tmpdir(), 'vl-spike-'));
try {
  const guestDir = lateDiskGuestDir(defaultGuestDir, path.join(dir, 'guest'));
  const diskPath = path.join(dir, 'disk.img');
  await templateDiskFile(defaultGuestDir, diskPath, DISK_MIB);

  // ---- boot to the prompt, disk attached late
  let t0 = performance.now();
  const vm = await startNodeVm({ guestDir, disk: { path: diskPath, name: 'spike' } });
  await vm.session.ready;
  console.log(`cold boot (Node) → prompt: ${ms(t0)}`);
  console.log(`  /init: ${/\/dev\/vda left alone[^\n]*/.exec(vm.session.log())?.[0] ?? 'disk NOT left alone'}`);
  await vm.session.run('echo settle');

  // ---- save (emulator stopped: no instruction runs between the pieces it saves)
  const emu = emulatorOf(vm.machine);
  await emu.stop();
  t0 = performance.now();
  const raw = new Uint8Array((await emu.save_state()) as ArrayBuffer);
  console.log(`save_state(): ${ms(t0)}, ${mib(raw.length)} raw (guest RAM ${mib(emu.v86.cpu.memory_size[0])})`);
  let best: Uint8Array = raw;
  for (const level of levels) {
    t0 = performance.now();
    const z = zstd.compress(raw, level);
    const took = ms(t0);
    t0 = performance.now();
    zstd.decompress(z);
    console.log(`  zstd -${level}: ${mib(z.length)} (${((100 * z.length) / raw.length).toFixed(1)} %), compress ${took}, decompress ${ms(t0)}`);
    if (level === 3 || best === raw) best = z;
  }
  t0 = performance.now();
  const gz = gzipSync(raw, { level: 6 });
  console.log(`  gzip -6 (reference): ${mib(gz.length)}, ${ms(t0)}`);
  await vm.stop();

  // ---- restore into a fresh machine with the same devices plugged, then the serial shell
  const [image, wasm] = await Promise.all([
    loadGuestImageFromDir(guestDir),
    readFile(createRequire(import.meta.url).resolve('v86/build/v86.wasm')).then((b) => WebAssembly.compile(b)),
  ]);
  for (const [label, state] of [
    ['zstd', best],
    ['raw', raw],
  ] as const) {
    let serial = '';
    const dec = new TextDecoder();
    const disk = FileBlockBackend.open(diskPath);
    const m = await Machine.create({
      image,
      wasm,
      onSerial: (b) => (serial += dec.decode(b, { stream: true })),
      devices: { console: { ports: [AGENT_PORT] }, blk: { backend: disk, name: 'spike' }, onDeviceError: (d, r) => console.log(`  device error: ${d}: ${r}`) },
    });
    t0 = performance.now();
    // Through the adapter: it also lowers our interrupt lines after v86's restore (docs/design.md).
    await (m as unknown as { host: { restoreState(s: Uint8Array): Promise<void> } }).host.restoreState(state);
    const restored = performance.now() - t0;
    m.start();
    m.typeIn(new TextEncoder().encode('echo restored-$((6*7))\n'));
    // Whether the guest runs or sleeps until it answers: instructions executed per 250 ms.
    const steps: string[] = [];
    let last = m.instructions();
    const sampler = setInterval(() => {
      const now = m.instructions();
      steps.push(`${((now - last) >>> 0) / 1e6}M`);
      last = now;
    }, 250);
    const echoed = await waitFor(() => serial, /./, 10_000);
    clearInterval(sampler);
    const firstByte = performance.now() - t0;
    console.log(`  instructions per 250 ms until the first echoed byte: ${steps.join(' ')}`);
    const answered = await waitFor(() => serial, /restored-42/, 10_000);
    console.log(
      `restore_state(${label}, ${mib(state.length)}): ${restored.toFixed(0)} ms; restore → first echoed byte ` +
        `${echoed ? `${firstByte.toFixed(0)} ms` : 'none in 10 s'}, → command answered ${answered ? ms(t0) : 'no answer in 10 s'}`,
    );
    const t1 = performance.now();
    m.typeIn(new TextEncoder().encode('echo again-$((6*7))\n'));
    console.log(`  a second echo: ${(await waitFor(() => serial, /again-42/, 10_000)) ? ms(t1) : 'no answer in 10 s'}`);
    if (label === 'zstd') {
      // Our virtio functions were not in the state: the guest's driver thinks its queues are
      // live, the device side is freshly reset. A read of /dev/vda goes to a queue the device
      // never saw set up.
      serial = '';
      m.typeIn(new TextEncoder().encode('dd if=/dev/vda bs=512 count=1 2>/dev/null | wc -c; echo dd-$((1+1))-done\n'));
      const dd = await waitFor(() => serial, /dd-2-done/, 5_000);
      console.log(`  read of /dev/vda after restore (virtio-blk state not restored): ${dd ? `answered: ${serial.replace(/\s+/g, ' ').trim()}` : 'no answer in 5 s (hung)'}`);
    }
    await m.stop();
    disk.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
