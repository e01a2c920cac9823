/**
 * Saved VM states: save the running VM under a name, restore one, download it as a file,
 * upload one, delete. Also says how this boot started (restored or booted, and from what)
 * and why a state could not be restored.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { StateInfo } from '../vm/protocol.ts';
import { defaultStateName, deleteState, downloadState, listStates, uploadState, type ListedState } from './states.ts';
import type { VmClient, VmSnapshot } from './vm-client.ts';
import { usePanelAction } from './use-panel-action.ts';

const MiB = 1024 * 1024;
const fmt = (bytes: number) => (bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`);
const when = (iso: string) => new Date(iso).toLocaleString();

function BootLine({ vm }: { vm: VmSnapshot }) {
  const t = vm.timings;
  const ms = t.ready !== undefined && t.workerStart !== undefined ? ` in ${((t.ready - t.workerStart) / 1000).toFixed(2)} s` : '';
  if (vm.start === 'restored' && vm.restoredFrom) {
    const from = vm.restoredFrom.kind === 'boot' ? 'the boot state' : `state "${vm.restoredFrom.name}"`;
    return (
      <p data-testid="boot-start" data-start="restored">
        Restored from {from}
        {vm.state === 'running' ? ms : '…'}
      </p>
    );
  }
  if (vm.start === 'booted') {
    return (
      <p data-testid="boot-start" data-start="booted">
        Booted the kernel{vm.state === 'running' ? ms : '…'}
        {vm.bootState?.bytes !== undefined && `; boot state saved (${fmt(vm.bootState.bytes)}) for instant start next time`}
      </p>
    );
  }
  return null;
}

function describe(s: StateInfo): string {
  const disk = s.disk ? (s.disk.included ? `, disk "${s.disk.name}" inside` : `, disk "${s.disk.name}" not inside`) : ', no disk';
  return `${when(s.createdAt)}, ${fmt(s.bytes)}${disk}, ${s.ring} rings`;
}

export function StatesPanel({ vm, client }: { vm: VmSnapshot; client: VmClient }) {
  const [states, setStates] = useState<ListedState[]>([]);
  const [name, setName] = useState('');

  const refresh = useCallback(async () => {
    setStates(await listStates());
  }, []);

  const { busy, message, act, reload } = usePanelAction(refresh);

  useEffect(() => {
    void reload();
  }, [reload, vm.boot, vm.statesSaved]);

  const onSave = (ev: FormEvent) => {
    ev.preventDefault();
    const n = name.trim() || defaultStateName();
    void act('saving', async () => {
      const info = await client.saveState(n);
      setName('');
      return `saved "${info.name}" (${fmt(info.bytes)})`;
    });
  };

  const onUpload = (file: File | undefined) => {
    if (!file) return;
    void act('uploading', async () => {
      const info = await uploadState(file);
      return `uploaded "${file.name}" as state "${info.name}"`;
    });
  };

  const restore = (s: StateInfo) => {
    const disk = s.disk?.included ? `\n\nDisk "${s.disk.name}" goes back to what it held when the state was saved.` : '';
    if (disk && !confirm(`Restore state "${s.name}"?${disk}`)) return;
    client.restore({ name: s.name });
  };

  const running = vm.state === 'running';
  return (
    <section className="states" data-testid="states-panel">
      <h2>States</h2>
      <BootLine vm={vm} />
      {vm.restoreFailed && (
        <p className="disk-msg error" role="alert" data-testid="restore-failed">
          Could not restore: {vm.restoreFailed}. Booted the kernel instead.
        </p>
      )}
      {vm.afterRestoreError && (
        <p className="disk-msg error" role="alert" data-testid="after-restore-error">
          {vm.afterRestoreError}
        </p>
      )}
      <form onSubmit={onSave} className="disk-create">
        <input aria-label="state name" placeholder={defaultStateName()} value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,39}" />
        <button type="submit" disabled={!running || busy !== undefined} data-testid="state-save" title="Save the running VM (and its disk) under this name">
          Save
        </button>
      </form>
      <table>
        <tbody>
          {states.map((s) => (
            <tr key={s.name} data-testid={`state-${s.name}`}>
              <td title={s.info ? describe(s.info) : s.error}>{s.name}</td>
              <td className="disk-actions">
                <button type="button" disabled={!s.info} onClick={() => s.info && restore(s.info)} title="Restart the VM from this state">
                  Restore
                </button>
                <button type="button" onClick={() => void act('downloading', () => downloadState(s.name))}>
                  Download
                </button>
                <button
                  type="button"
                  onClick={() => {
                    if (confirm(`Delete state "${s.name}"?`)) void act('deleting', () => deleteState(s.name));
                  }}
                >
                  Delete
                </button>
                {s.error && <div className="disk-msg error">{s.error}</div>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <label className="disk-upload">
        Upload a state <input type="file" accept=".vlstate" data-testid="state-upload" onChange={(e) => onUpload(e.target.files?.[0])} />
      </label>
      {busy && <p className="disk-msg">{busy}…</p>}
      {message && (
        <p className={`disk-msg ${message.error ? 'error' : ''}`} role={message.error ? 'alert' : 'status'} data-testid="state-message">
          {message.text}
        </p>
      )}
    </section>
  );
}
