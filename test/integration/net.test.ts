/**
 * virtio-net end to end in Node: the real guest, our device, a WebSocket to our relay on
 * 127.0.0.1 — DHCP lease, ping to the gateway, and TCP through the gateway's NAT both ways
 * (wget of a file this test serves; nc uploading it back), checked by md5.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachRelay, type Relay } from '../../src/relay/index.ts';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';

const listen = (s: Server | TcpServer) =>
  new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

describe('virtio-net in the real guest, through our relay', () => {
  let relayServer: Server;
  let relay: Relay;
  let files: Server;
  let sink: TcpServer;
  let vm: NodeVm;
  let filesPort = 0;
  let sinkPort = 0;
  const payload = randomBytes(256 * 1024);
  const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
  /** md5s of what guests uploaded to the sink, in arrival order. */
  const uploads: Promise<string>[] = [];

  beforeAll(async () => {
    relayServer = createHttpServer((_, res) => res.writeHead(404).end());
    relay = attachRelay(relayServer);
    const relayPort = await listen(relayServer);
    files = createHttpServer((req, res) => {
      if (req.url === '/payload.bin') res.writeHead(200, { 'content-length': payload.length }).end(payload);
      else res.writeHead(404).end();
    });
    filesPort = await listen(files);
    // Reads exactly payload.length bytes, then hangs up (busybox nc does not half-close).
    sink = createTcpServer((sock) => {
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
    sinkPort = await listen(sink);
    vm = await startNodeVm({ net: { relayUrl: `ws://127.0.0.1:${relayPort}/relay/itest` } });
    await vm.session.ready;
    // /init runs udhcpc in the background: wait for the lease.
    const lease = await vm.session.run(
      'for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0',
      { timeoutMs: 30_000 },
    );
    expect(lease.output).toMatch(/inet 10\.0\.2\.\d+\/24/);
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
    await relay?.close();
    relayServer?.close();
    files?.close();
    sink?.close();
  });

  it('is bound by virtio_net and configured by DHCP', async () => {
    expect((await vm.session.run('basename $(readlink /sys/class/net/eth0/device/driver)')).output.trim()).toBe('virtio_net');
    expect((await vm.session.run('cat /sys/class/net/eth0/address')).output.trim()).toBe(vm.mac);
    expect((await vm.session.run('ip route')).output).toMatch(/default via 10\.0\.2\.2/);
    expect((await vm.session.run('cat /etc/resolv.conf')).output).toMatch(/nameserver 10\.0\.2\.2/);
  });

  it('pings the gateway', async () => {
    const r = await vm.session.run('ping -c 5 -i 0.2 10.0.2.2');
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/5 packets transmitted, 5 packets received, 0% packet loss/);
  });

  it('resolves lab names', async () => {
    const r = await vm.session.run('nslookup gateway 10.0.2.2');
    expect(r.output).toMatch(/Address:? .*10\.0\.2\.2/);
  });

  it('downloads from the host through the NAT with wget (md5 matches)', async () => {
    const r = await vm.session.run(`wget -q -O /tmp/p.bin http://10.0.2.2:${filesPort}/payload.bin && md5sum /tmp/p.bin`, {
      timeoutMs: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.output.split(' ')[0]).toBe(md5(payload));
  }, 70_000);

  it('uploads to the host through the NAT with nc (md5 matches)', async () => {
    const r = await vm.session.run(`nc 10.0.2.2 ${sinkPort} < /tmp/p.bin`, { timeoutMs: 60_000 });
    expect(r.status).toBe(0);
    expect(uploads).toHaveLength(1);
    expect(await uploads[0]).toBe(md5(payload));
    const stats = vm.machine.deviceStats().find((d) => d.name === 'virtio-net')!;
    expect(stats.extra.txBytes).toBeGreaterThan(payload.length);
    expect(stats.extra.rxBytes).toBeGreaterThan(payload.length);
    expect(vm.deviceErrors).toEqual([]);
  }, 70_000);
});
