/**
 * The NIC: its network mode, link state and why it is down, the uplink (relay room, wisp
 * server), MAC, the guest's leased IP, frame/byte counters, drops, and a pcap download of
 * what crossed the device.
 */
import { useEffect, useState } from 'react';
import type { NetStatus } from '../vm/protocol.ts';
import type { VmClient, VmSnapshot } from './vm-client.ts';

function roomOf(url: string): string {
  const m = /\/relay\/([^/?#]+)/.exec(url);
  return m ? decodeURIComponent(m[1]) : '';
}

/** What each mode can and cannot reach, for the panel. */
const MODE_HELP: Record<string, string> = {
  relay: 'Ethernet frames to the relay; its gateway does DHCP, DNS and NAT.',
  wisp: 'Gateway in this tab; TCP and UDP leave as wisp streams through the server.',
  fetch:
    'No server: guest HTTP (port 80) becomes the page’s fetch(), so only sites that send CORS headers answer. HTTPS from the guest and other TCP get a reset.',
  none: 'No network.',
};

/** "retrying in N s", counting down between status updates. */
function useRetryText(net: NetStatus | undefined): string | undefined {
  const [now, setNow] = useState(() => Date.now());
  const due = net && !net.up && net.retryInMs !== undefined && net.at !== undefined ? net.at + net.retryInMs : undefined;
  useEffect(() => {
    if (due === undefined) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [due]);
  if (due === undefined) return undefined;
  const s = Math.max(0, Math.ceil((due - now) / 1000));
  return s > 0 ? `retrying in ${s} s` : 'retrying now';
}

const n = (x: number | undefined) => (x ?? 0).toLocaleString('en-US');
const kib = (x: number | undefined) => `${((x ?? 0) / 1024).toFixed(1)} KiB`;

export function NetPanel({ vm, client }: { vm: VmSnapshot; client: VmClient }) {
  const [msg, setMsg] = useState<string>();
  const net = vm.net;
  const retry = useRetryText(net);
  if (!net) return null;
  const mode = net.mode ?? 'relay';
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
        mode <span data-testid="net-mode">{mode}</span>, eth0 link{' '}
        <span className={`link link-${net.up ? 'up' : 'down'}`} data-testid="net-link">
          {net.up ? 'up' : 'down'}
        </span>
      </p>
      {(net.problem || retry) && (
        <p className="net-problem" data-testid="net-problem">
          {[net.problem, retry].filter(Boolean).join('; ')}
        </p>
      )}
      <p className="net-help">{MODE_HELP[mode]}</p>
      <dl>
        {mode === 'relay' && (
          <>
            <dt>relay</dt>
            <dd title={net.relayUrl}>{net.relayUrl}</dd>
            <dt>room</dt>
            <dd data-testid="net-room">{roomOf(net.relayUrl)}</dd>
          </>
        )}
        {mode === 'wisp' && (
          <>
            <dt>wisp</dt>
            <dd data-testid="net-wisp" title={net.wispUrl}>
              {net.wispUrl}
            </dd>
          </>
        )}
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
