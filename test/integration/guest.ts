/**
 * What the real-guest integration tests share: shell commands that must succeed, blank disk
 * images, per-device stats, and the net lab (our relay, a file server and an upload sink on
 * 127.0.0.1, a guest holding a DHCP lease).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import path from 'node:path';
import { expect } from 'vitest';
import { attachRelay, type Relay } from '../../src/relay/index.ts';
import { startNodeVm, type NodeVm, type NodeVmOptions } from '../../src/vm/node/node-machine.ts';

export const MiB = 1 << 20;
export const BOOT_TIMEOUT = 120_000;

/** Runs `cmd` in the guest shell; throws with its output unless it exits 0. Returns the trimmed output. */
export async function sh(vm: NodeVm, cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await vm.session.run(cmd, { timeoutMs });
  if (r.status !== 0) throw new Error(`guest command failed (${r.status}): ${cmd}\n${r.output}`);
  return r.output.trim();
}

/** A sparse, all-zero raw image of `size` bytes at dir/name. */
export function blankImage(dir: string, name: string, size = 64 * MiB): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

export const statsOf = (vm: NodeVm, name: string) => vm.machine.deviceStats().find((d) => d.name === name)!;

export const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

const listen = (s: Server | TcpServer) =>
  new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

export interface NetLab {
  vm: NodeVm;
  /** Port on 10.0.2.2 (through the NAT) serving `payload` at /payload.bin. */
  filesPort: number;
  /** Port on 10.0.2.2 taking uploads of `payload`. */
  sinkPort: number;
  payload: Uint8Array;
  /** md5s of what guests uploaded to the sink, in arrival order. */
  uploads: Promise<string>[];
  /** The relay the guest is on (its stats show the switch's table). */
  relay: Relay;
  stop(): Promise<void>;
}

/**
 * Starts the relay (clients on ws://…/relay/`room`), the file server and the sink, boots a
 * guest on the relay with `devices`, and waits for /init's background udhcpc to get a lease.
 */
export async function startNetLab(room: string, devices?: NodeVmOptions['devices'], payloadBytes = 256 * 1024, net: { superSegmentsOut?: boolean } = {}): Promise<NetLab> {
  const payload = randomBytes(payloadBytes);
  const uploads: Promise<string>[] = [];
  const relayServer = createHttpServer((_, res) => res.writeHead(404).end());
  const relay: Relay = attachRelay(relayServer);
  const relayPort = await listen(relayServer);
  const files = createHttpServer((req, res) => {
    if (req.url === '/payload.bin') res.writeHead(200, { 'content-length': payload.length }).end(payload);
    else res.writeHead(404).end();
  });
  const filesPort = await listen(files);
  // Reads exactly payload.length bytes, then hangs up (busybox nc does not half-close).
  const sink = createTcpServer((sock) => {
    uploads.push(
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let n = 0;
        sock.on('data', (c: Buffer) => {
          chunks.push(c);
          n += c.length;
          if (n >= payload.length) {
            resolve(md5(Buffer.concat(chunks).subarray(0, payload.length)));
            sock.end();
          }
        });
      }),
    );
  });
  const sinkPort = await listen(sink);
  let vm: NodeVm | undefined;
  const stop = async () => {
    await vm?.stop();
    await relay.close();
    relayServer.close();
    files.close();
    sink.close();
  };
  try {
    vm = await startNodeVm({ net: { relayUrl: `ws://127.0.0.1:${relayPort}/relay/${room}`, ...net }, ...(devices ? { devices } : {}) });
    await vm.session.ready;
    const lease = await vm.session.run(
      'for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0',
      { timeoutMs: 30_000 },
    );
    expect(lease.output).toMatch(/inet 10\.0\.2\.\d+\/24/);
  } catch (e) {
    await stop();
    throw e;
  }
  return { vm, filesPort, sinkPort, payload, uploads, relay, stop };
}
