/**
 * `npm run vm`: boots the lab's machine headless, serial console on this terminal.
 * Ctrl-A x quits (as in QEMU); Ctrl-A Ctrl-A sends a literal Ctrl-A.
 */
import { GuestImageError } from '../guest-image.ts';
import { parseMac } from '../../devices/net/config.ts';
import { diskNameFor, startNodeVm, type NodeDiskFile, type NodeVm } from './node-machine.ts';

const USAGE = `usage: npm run vm [-- [--guest DIR] [--disk IMAGE [--ro]] [--net URL [--mac MAC]] [--ring packed|split]]

Boots the virtio-lab guest in this terminal (serial console).
  --guest DIR    guest image directory (default public/guest)
  --disk IMAGE   attach a raw disk image as /dev/vda (virtio-blk). Its size must be a
                 multiple of 512 bytes; make one with: truncate -s 64M disk.img
                 A blank image is formatted ext4 by the guest's /init and mounted at
                 /mnt/disk. The serial (/sys/block/vda/serial) is the file's base name.
  --ro           attach the disk read-only (opened O_RDONLY; the guest sees VIRTIO_BLK_F_RO)
  --net URL      attach a virtio-net NIC (eth0) to the relay at URL, e.g.
                 ws://127.0.0.1:8080/relay/lab (npm start serves it). The guest's /init
                 runs DHCP; reconnects by itself if the relay restarts.
  --mac MAC      the NIC's address (default: random, locally administered)
  --ring LAYOUT  virtqueue layout the devices offer: split (default) or packed
                 (VIRTIO_F_RING_PACKED; the guest's drivers take it when offered)
Press Ctrl-A x to quit.`;

interface Args {
  guestDir?: string;
  disk?: string;
  readOnly?: boolean;
  net?: string;
  mac?: string;
  ring?: 'split' | 'packed';
}

function parseArgs(argv: string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--guest' && argv[i + 1]) {
      out.guestDir = argv[++i];
    } else if (a === '--disk' && argv[i + 1]) {
      out.disk = argv[++i];
    } else if (a === '--net' && argv[i + 1]) {
      out.net = argv[++i];
    } else if (a === '--mac' && argv[i + 1]) {
      out.mac = argv[++i];
    } else if (a === '--ring' && argv[i + 1]) {
      const ring = argv[++i];
      if (ring !== 'split' && ring !== 'packed') {
        console.error(`--ring wants split or packed, got ${ring}\n\n${USAGE}`);
        process.exit(2);
      }
      out.ring = ring;
    } else if (a === '--ro') {
      out.readOnly = true;
    } else {
      console.error(`unknown argument: ${a}\n\n${USAGE}`);
      process.exit(2);
    }
  }
  if (out.readOnly && !out.disk) {
    console.error(`--ro needs --disk\n\n${USAGE}`);
    process.exit(2);
  }
  if (out.mac && !out.net) {
    console.error(`--mac needs --net\n\n${USAGE}`);
    process.exit(2);
  }
  if (out.mac) {
    try {
      parseMac(out.mac);
    } catch (e) {
      console.error(`--mac: ${(e as Error).message}`);
      process.exit(2);
    }
  }
  if (out.net && !/^wss?:\/\//.test(out.net)) {
    console.error(`--net wants a ws:// or wss:// URL, got ${out.net}\n\n${USAGE}`);
    process.exit(2);
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  let disk: NodeDiskFile | undefined;
  if (args.disk) {
    disk = {
      path: args.disk,
      readOnly: args.readOnly,
      onBackendError: (kind, message) =>
        process.stderr.write(`\n[virtio-lab] disk ${kind === 'quota' ? 'storage full' : `${kind} error`}: ${message}\n`),
    };
  }
  let vm: NodeVm;
  try {
    const net = args.net ? { relayUrl: args.net, mac: args.mac } : undefined;
    vm = await startNodeVm({ guestDir: args.guestDir, onSerial: (b) => process.stdout.write(b), disk, net, devices: { ring: args.ring } });
  } catch (e) {
    // A missing or badly sized image: one clear line, not a stack trace.
    if (disk && !(e instanceof GuestImageError)) {
      console.error(`virtio-lab: disk ${disk.path}: ${(e as Error).message}`);
      process.exit(1);
    }
    throw e;
  }
  if (args.disk) {
    process.stderr.write(`[virtio-lab] ${args.disk} is /dev/vda (serial "${diskNameFor(args.disk)}"${args.readOnly ? ', read-only' : ''})\n`);
  }
  if (args.net) process.stderr.write(`[virtio-lab] eth0 ${vm.mac} on ${args.net}\n`);
  void vm.session.ready.then(() => {
    process.stderr.write(`\n[virtio-lab] shell ready after ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  });
  const quit = async (code: number) => {
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    await vm.stop().catch(() => undefined);
    process.exit(code);
  };
  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  let escape = false;
  process.stdin.on('data', (chunk: Buffer) => {
    const out: number[] = [];
    for (const b of chunk) {
      if (escape) {
        escape = false;
        if (b === 0x78 /* x */) return void quit(0);
        if (b === 0x01) out.push(0x01);
        continue;
      }
      if (b === 0x01) escape = true;
      else out.push(b === 0x0a ? 0x0d : b);
    }
    if (out.length) vm.machine.typeIn(Uint8Array.from(out));
  });
  process.stdin.on('end', () => void quit(0));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void quit(130));
}

main().catch((e: unknown) => {
  const err = e as Error;
  console.error(err instanceof GuestImageError ? `virtio-lab: ${err.message}` : err);
  process.exit(1);
});
