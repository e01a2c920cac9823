import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import { App } from './App.tsx';
import { bootStartFromUrl, VmClient } from './vm-client.ts';
import { installLabApi } from './lab-api.ts';
import { LessonEngine } from './lessons/engine.ts';
import { LESSONS } from './lessons/lessons/index.ts';
import { DEFAULT_DISK, ensureDefaultDisk } from '../disks/disk-store.ts';
import type { DiskAttachment, NetAttachment } from '../vm/protocol.ts';
import { formatMac, localMac } from '../devices/net/config.ts';
import { NET_HEADER, chooseNet, serverNetModes } from './net-choice.ts';

const hasOpfs = typeof navigator.storage?.getDirectory === 'function';

/** ?disk=NAME (default "lab"), ?disk=none, &ro=1 for read-only. */
function diskFromUrl(): DiskAttachment | null {
  const params = new URLSearchParams(location.search);
  const name = params.get('disk') ?? DEFAULT_DISK.name;
  if (!hasOpfs || name === '' || name === 'none') return null;
  return { name, readOnly: params.get('ro') === '1' };
}

/** Keeps the URL in step with the disk choice, so a reload boots the same way. */
function diskToUrl(disk: DiskAttachment | null): void {
  const url = new URL(location.href);
  url.searchParams.set('disk', disk ? disk.name : 'none');
  if (disk?.readOnly) url.searchParams.set('ro', '1');
  else url.searchParams.delete('ro');
  history.replaceState(null, '', url);
}

/**
 * The network from the URL (net-choice.ts) and from what this host offers: a HEAD request
 * for the page itself reads NET_HEADER, which `npm start` sets and static hosts do not.
 */
async function netFromUrl(): Promise<NetAttachment | null> {
  let offered: Set<string> | null = null;
  try {
    const res = await fetch(location.href, { method: 'HEAD', cache: 'no-store' });
    offered = serverNetModes(res.headers.get(NET_HEADER));
  } catch {
    // offline or the host refuses HEAD: as a static host
  }
  const choice = chooseNet(location.href, offered);
  const mac = tabMac();
  const net = netAttachment(choice, mac);
  if (net && new URL(location.href).searchParams.get('guest-tso') === '0') net.guestTso = false;
  if (net && new URL(location.href).searchParams.get('tx-super') === '1') net.txSuperSegments = true;
  return net;
}

function netAttachment(choice: ReturnType<typeof chooseNet>, mac: string): NetAttachment | null {
  switch (choice.mode) {
    case 'none':
      return null;
    case 'invalid':
      return { mode: 'none', relayUrl: '', mac, note: choice.reason };
    case 'fetch':
      return { mode: 'fetch', relayUrl: '', mac };
    case 'relay':
      return { mode: 'relay', relayUrl: choice.relayUrl, mac };
    case 'wisp':
      return { mode: 'wisp', relayUrl: '', wispUrl: choice.wispUrl, mac };
  }
}

/**
 * A fresh locally administered MAC per page load: two tabs in a room must differ, and a
 * duplicated tab copies sessionStorage, so nothing stored can be trusted to be unique.
 */
function tabMac(): string {
  return formatMac(localMac());
}

const client = new VmClient(new URL('guest/', document.baseURI).href);
client.prewarm();
const enc = new TextEncoder();
const lessons = new LessonEngine(LESSONS, {
  inspector: client.inspector,
  control: (device, queue, action) => client.inspectControl(device, queue, action),
  type: (text) => client.type(enc.encode(text)),
  devices: () => client.snapshot().devices,
  port: Number(location.port || (location.protocol === 'https:' ? 443 : 80)),
});
installLabApi(client, lessons);

/** ?lesson=ID&step=N (N from 1) opens a lesson at a step. */
const linked = new URLSearchParams(location.search);
const lessonId = linked.get('lesson');
if (lessonId) lessons.open(lessonId, linked.has('step') ? Number(linked.get('step')) - 1 : undefined);

const boot = (disk: DiskAttachment | null) => {
  diskToUrl(disk);
  client.start(disk);
};

const first = diskFromUrl();
// ?boot=cold, ?state=NAME: the first boot only; restarts restore the boot state as usual.
const how = bootStartFromUrl();
// The network check (a request to the server) and the disk check run side by side.
// The default disk is made on first visit; if that fails the VM boots without it.
const disk = first && first.name === DEFAULT_DISK.name && !first.readOnly ? ensureDefaultDisk().then(() => first, () => null) : Promise.resolve(first);
void Promise.all([disk, netFromUrl()]).then(([d, net]) => client.start(d, net, how));

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} onBoot={boot} lessons={lessons} />
  </StrictMode>,
);
