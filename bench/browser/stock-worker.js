// Stock v86 in a dedicated worker, as a v86 user runs it today: the lab's guest image with
// v86's own IDE disk or NIC, nothing of ours. Also the "raw OPFS" floor: the same access
// pattern as fio straight on a SyncAccessHandle, no guest at all. Served by bench/suite/server.ts;
// plain JavaScript so it is loaded exactly as written.
import { V86 } from '/stock/libv86.mjs';

let emulator;
let pending = [];
let flushTimer;

function flushSerial() {
  flushTimer = undefined;
  if (pending.length === 0) return;
  const bytes = Uint8Array.from(pending);
  pending = [];
  postMessage({ type: 'serial', bytes }, [bytes.buffer]);
}

async function boot(msg) {
  const base = new URL('/guest/', location.origin);
  const manifest = await (await fetch(new URL('manifest.json', base))).json();
  const file = async (role) => {
    const name = manifest.files.find((f) => f.role === role).file;
    return { buffer: await (await fetch(new URL(name, base))).arrayBuffer() };
  };
  const options = {
    wasm_path: '/stock/v86.wasm',
    memory_size: manifest.memoryMiB * 1024 * 1024,
    bios: await file('bios'),
    bzimage: await file('kernel'),
    initrd: await file('initrd'),
    cmdline: manifest.cmdline,
    autostart: true,
    net_device: msg.net ?? { type: 'none' },
  };
  // v86's IDE disk over an ArrayBuffer: the same zeroed bytes the lab's mem: disk starts with.
  if (msg.hdaBytes) options.hda = { buffer: new ArrayBuffer(msg.hdaBytes) };
  emulator = new V86(options);
  emulator.add_listener('serial0-output-byte', (b) => {
    pending.push(b);
    flushTimer ??= setTimeout(flushSerial, 4);
  });
}

/** One fio-like job on a SyncAccessHandle: `seconds` of back-to-back bs-sized reads or writes. */
async function rawOpfs({ rw, bs, seconds, fileBytes }) {
  const root = await navigator.storage.getDirectory();
  const fh = await root.getFileHandle('bench-raw-opfs.img', { create: true });
  const h = await fh.createSyncAccessHandle();
  try {
    if (h.getSize() !== fileBytes) h.truncate(fileBytes);
    const buf = new Uint8Array(bs).fill(0xa5);
    const blocks = Math.floor(fileBytes / bs);
    const write = rw.includes('write');
    const random = rw.startsWith('rand');
    let ops = 0;
    let seq = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      // Check the clock every 16 ops: performance.now() is not free next to a 4 KiB copy.
      for (let i = 0; i < 16; i++) {
        const block = random ? Math.floor(Math.random() * blocks) : seq++ % blocks;
        const at = block * bs;
        if (write) h.write(buf, { at });
        else h.read(buf, { at });
        ops++;
      }
    }
    const elapsed = (performance.now() - t0) / 1000;
    return { ops, seconds: elapsed, iops: ops / elapsed, mibps: (ops * bs) / elapsed / 1048576 };
  } finally {
    h.close();
  }
}

self.onmessage = async ({ data: msg }) => {
  try {
    switch (msg.type) {
      case 'boot':
        await boot(msg);
        postMessage({ type: 'booted' });
        break;
      case 'serial-in':
        emulator.serial0_send(msg.text);
        break;
      case 'instructions':
        postMessage({ type: 'instructions', id: msg.id, value: emulator.get_instruction_counter() });
        break;
      case 'raw-opfs':
        postMessage({ type: 'raw-opfs', id: msg.id, result: await rawOpfs(msg.job) });
        break;
    }
  } catch (e) {
    postMessage({ type: 'error', id: msg.id, message: String(e?.stack ?? e) });
  }
};
