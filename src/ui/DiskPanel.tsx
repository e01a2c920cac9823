/**
 * The lab's disks: list (name, size, bytes in OPFS), create, delete, download, upload a raw
 * image, and boot with one (optionally read-only). The VM boots with the chosen disk; the URL
 * (?disk=NAME&ro=1, ?disk=none) says which, so a reload keeps it.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import {
  createDisk,
  deleteDisk,
  downloadDisk,
  listDisks,
  storageUsage,
  uploadDisk,
  type DiskInfo,
  type StorageUsage,
} from '../disks/disk-store.ts';
import type { DiskAttachment } from '../vm/protocol.ts';
import type { VmSnapshot } from './vm-client.ts';
import { usePanelAction } from './use-panel-action.ts';

const MiB = 1024 * 1024;
const fmt = (bytes: number) => (bytes >= 1024 * MiB ? `${(bytes / 1024 / MiB).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`);

export function DiskPanel({ vm, onBoot }: { vm: VmSnapshot; onBoot(disk: DiskAttachment | null): void }) {
  const [disks, setDisks] = useState<DiskInfo[]>([]);
  const [usage, setUsage] = useState<StorageUsage>();
  const [newName, setNewName] = useState('');
  const [newSize, setNewSize] = useState(128);
  const [readOnly, setReadOnly] = useState(false);

  const refresh = useCallback(async () => {
    setDisks(await listDisks());
    setUsage(await storageUsage());
  }, []);

  const { busy, setBusy, message, act, reload } = usePanelAction(refresh);

  // Refresh when the VM (re)attaches a disk and every few seconds while it writes.
  useEffect(() => {
    void reload();
    const t = setInterval(() => void reload(), 5000);
    return () => clearInterval(t);
  }, [reload, vm.boot, vm.disk?.name]);

  const onCreate = (ev: FormEvent) => {
    ev.preventDefault();
    const name = newName.trim();
    void act('creating', () => createDisk(name, Math.round(newSize) * MiB), `created disk "${name}"`);
    setNewName('');
  };

  const onUpload = (file: File | undefined) => {
    if (!file) return;
    const name = file.name.replace(/\.(img|raw|bin)$/i, '').replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 20);
    void act(
      'uploading',
      () => uploadDisk(name, file, (done, total) => setBusy(`uploading ${Math.round((100 * done) / total)}%`)),
      `uploaded "${file.name}" as disk "${name}"`,
    );
  };

  const attached = vm.disk?.name;
  return (
    <section className="disks" data-testid="disk-panel">
      <h2>Disks</h2>
      {vm.disk && (
        <p className="disk-attached" data-testid="disk-attached">
          /dev/vda = <strong>{vm.disk.name}</strong> ({fmt(vm.disk.size)}
          {vm.disk.readOnly ? ', read-only' : ''}
          {vm.disk.snapshot ? ', snapshot: in use by another tab' : ''})
        </p>
      )}
      {!vm.disk && vm.state !== 'loading' && <p className="disk-attached">No disk attached.</p>}
      {vm.storageFull && (
        <p className="disk-msg error" role="alert" data-testid="storage-full">
          Storage full: {vm.storageFull}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th>name</th>
            <th>size</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {disks.map((d) => (
            <tr key={d.name} data-testid={`disk-${d.name}`} className={d.name === attached ? 'attached' : ''}>
              <td title={`modified ${new Date(d.lastModified).toLocaleString()}`}>{d.name}</td>
              <td>{fmt(d.size)}</td>
              <td className="disk-actions">
                <button type="button" onClick={() => onBoot({ name: d.name, readOnly })} title="Restart the VM with this disk">
                  Boot
                </button>
                <button type="button" onClick={() => void act('downloading', () => downloadDisk(d.name))}>
                  Download
                </button>
                <button
                  type="button"
                  disabled={d.name === attached}
                  onClick={() => {
                    if (confirm(`Delete disk "${d.name}" and everything on it?`)) void act('deleting', () => deleteDisk(d.name), `deleted "${d.name}"`);
                  }}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <label className="disk-ro">
        <input type="checkbox" checked={readOnly} onChange={(e) => setReadOnly(e.target.checked)} /> boot read-only
      </label>
      <button type="button" onClick={() => onBoot(null)}>
        Boot without a disk
      </button>
      <form onSubmit={onCreate} className="disk-create">
        <input aria-label="new disk name" placeholder="name" value={newName} onChange={(e) => setNewName(e.target.value)} required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,19}" />
        <input aria-label="new disk size in MiB" type="number" min={1} max={65536} value={newSize} onChange={(e) => setNewSize(Number(e.target.value))} /> MiB
        <button type="submit">Create</button>
      </form>
      <label className="disk-upload">
        Upload raw image <input type="file" data-testid="disk-upload" onChange={(e) => onUpload(e.target.files?.[0])} />
      </label>
      {busy && <p className="disk-msg">{busy}…</p>}
      {message && (
        <p className={`disk-msg ${message.error ? 'error' : ''}`} role={message.error ? 'alert' : 'status'} data-testid="disk-message">
          {message.text}
        </p>
      )}
      {usage && (
        <p className="disk-usage">
          OPFS: {fmt(usage.usage)} used of {fmt(usage.quota)}
        </p>
      )}
    </section>
  );
}
