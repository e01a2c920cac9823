/** Stock v86 from npm in this Node process, booting the lab's guest image: the anchors' VM outside a browser. */
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { V86 } from 'v86';
import { ConsoleSession } from '../../src/vm/console-session.ts';
import { loadGuestImageFromDir } from '../../src/vm/node/node-machine.ts';

export interface StockNodeOptions {
  /** A zeroed IDE disk (hda) of this many bytes. */
  hdaBytes?: number;
  /** v86's own NIC on a relay. */
  net?: { type: 'virtio' | 'ne2k'; relay_url: string };
}

export async function stockV86InNode(opts: StockNodeOptions): Promise<{ session: ConsoleSession; destroy(): Promise<void> }> {
  // v86's relay client uses the global WebSocket, which Node 20 lacks.
  (globalThis as unknown as { WebSocket: unknown }).WebSocket ??= WebSocket;
  const image = await loadGuestImageFromDir();
  const buf = (b: Uint8Array) => ({ buffer: b.slice().buffer });
  const emulator = new (V86 as unknown as new (o: object) => {
    add_listener(e: string, f: (b: number) => void): void;
    serial0_send(s: string): void;
    destroy(): Promise<void>;
  })({
    wasm_path: createRequire(import.meta.url).resolve('v86/build/v86.wasm'),
    memory_size: image.manifest.memoryMiB << 20,
    bios: buf(image.bios),
    bzimage: buf(image.kernel),
    initrd: buf(image.initrd),
    cmdline: image.manifest.cmdline,
    autostart: true,
    net_device: opts.net ?? { type: 'none' },
    ...(opts.hdaBytes ? { hda: { buffer: new ArrayBuffer(opts.hdaBytes) } } : {}),
  });
  const session = new ConsoleSession((t) => emulator.serial0_send(t));
  emulator.add_listener('serial0-output-byte', (b) => session.feed(Uint8Array.of(b)));
  return { session, destroy: () => emulator.destroy() };
}
