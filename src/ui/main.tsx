import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@xterm/xterm/css/xterm.css';
import './app.css';
import { App } from './App.tsx';
import { VmClient } from './vm-client.ts';
import { installLabApi } from './lab-api.ts';
import { DEFAULT_DISK, ensureDefaultDisk } from '../disks/disk-store.ts';
import type { DiskAttachment } from '../vm/protocol.ts';

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

const client = new VmClient(new URL('guest/', document.baseURI).href);
installLabApi(client);

const boot = (disk: DiskAttachment | null) => {
  diskToUrl(disk);
  client.start(disk);
};

const first = diskFromUrl();
if (first && first.name === DEFAULT_DISK.name && !first.readOnly) {
  // The default disk is made on first visit; if that fails the VM boots without it.
  ensureDefaultDisk().then(
    () => client.start(first),
    () => client.start(null),
  );
} else {
  client.start(first);
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} onBoot={boot} />
  </StrictMode>,
);
