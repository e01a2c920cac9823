/**
 * The NIC: link state, relay, room, MAC, the guest's leased IP, frame/byte counters, drops,
 * and a pcap download of what crossed the device.
 */
import { useState } from 'react';
import type { VmClient, VmSnapshot } from './vm-client.ts';

function roomOf(url: string): string {
  const m = /\/relay\/([^/?#]+)/.exec(url);
  return m ? decodeURIComponent(m[1]) : '';
}

const n = (x: number | undefined) => (x ?? 0).toLocaleString('en-US');
const kib = (x: number | undefined) => `${((x ?? 0) / 1024).toFixed(1)} KiB`;

export function NetPanel({ vm, client }: { vm: VmSnapshot; client: VmClient }) {
  const [msg, setMsg] = useState<string>();
  const net = vm.net;
  if (!net) return null;
  const stats = vm.devices.find((d) => d.name === 'virtio-net')?.extra ?? {};
  const download = async () => {
    setMsg(undefined);
    try {
      const pcap = await client.capture();
      const url = URL.createObjectURL(new Blob([pcap as Uint8Array<ArrayBuffer>], { type: 'application/vnd.tcpdump.pcap' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `virtio-lab-${net.mac.replace(/:/g, '')}.pcap`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      setMsg((e as Error).message);
    }
  };
  return (
    <section className="net" data-testid="net-panel">
      <h2>Network</h2>
      <p>
        eth0 link{' '}
        <span className={`link link-${net.up ? 'up' : 'down'}`} data-testid="net-link">
          {net.up ? 'up' : 'down'}
        </span>
      </p>
      <dl>
        <dt>relay</dt>
        <dd title={net.relayUrl}>{net.relayUrl}</dd>
        <dt>room</dt>
        <dd data-testid="net-room">{roomOf(net.relayUrl)}</dd>
        <dt>MAC</dt>
        <dd data-testid="net-mac">{net.mac}</dd>
        <dt>IP</dt>
        <dd data-testid="net-ip">{net.ip ?? '—'}</dd>
        <dt>tx</dt>
        <dd data-testid="net-tx">
          {n(stats.txFrames)} frames, {kib(stats.txBytes)}
        </dd>
        <dt>rx</dt>
        <dd data-testid="net-rx">
          {n(stats.rxFrames)} frames, {kib(stats.rxBytes)}
        </dd>
        <dt>dropped</dt>
        <dd data-testid="net-drops" title="rx: no buffer posted and the backlog full, oversized…; tx: link down, malformed">
          rx {n(stats.rxDrops)}, tx {n(stats.txDrops)}
        </dd>
      </dl>
      <button type="button" onClick={() => void download()} title="The newest 8 MiB of frames, both directions, for Wireshark">
        Capture (pcap)
      </button>
      {msg && <p className="disk-msg error">{msg}</p>}
    </section>
  );
}
