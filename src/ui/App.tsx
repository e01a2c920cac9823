import { useSyncExternalStore } from 'react';
import { DiskPanel } from './DiskPanel.tsx';
import { InspectorPanel } from './inspector/InspectorPanel.tsx';
import type { LessonEngine } from './lessons/engine.ts';
import { LessonPanel } from './lessons/LessonPanel.tsx';
import { NetPanel } from './NetPanel.tsx';
import { StatesPanel } from './StatesPanel.tsx';
import { Terminal } from './Terminal.tsx';
import type { DiskAttachment } from '../vm/protocol.ts';
import { useVm } from './use-vm.ts';
import type { VmClient, VmSnapshot } from './vm-client.ts';

const MB = 1024 * 1024;

function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h ${m}m ${sec}s` : m ? `${m}m ${sec}s` : `${(ms / 1000).toFixed(1)} s`;
}

function StatusLine({ vm, onRestart, inspecting, onInspect }: { vm: VmSnapshot; onRestart(): void; inspecting: boolean; onInspect(): void }) {
  const label = vm.state === 'loading' ? 'loading image' : vm.state;
  return (
    <header className="status">
      <strong className="brand">virtio-lab</strong>
      <span className={`state state-${vm.state}`} data-testid="vm-state">
        {label}
      </span>
      {(vm.state === 'booting' || vm.state === 'running') && (
        <span className="uptime" data-testid="uptime">
          uptime {formatUptime(vm.uptimeMs)}
        </span>
      )}
      <span className="spacer" />
      <button type="button" onClick={onInspect} className={inspecting ? 'on' : ''} aria-pressed={inspecting} data-testid="inspector-toggle" title="Watch the virtqueues live">
        Inspector
      </button>
      <button type="button" onClick={onRestart} data-testid="restart">
        Restart
      </button>
    </header>
  );
}

function LoadProgressBar({ vm }: { vm: VmSnapshot }) {
  const p = vm.progress;
  const frac = p && p.total ? p.loaded / p.total : 0;
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(frac * 100)} data-testid="load-progress">
      <div className="progress-text">
        {p?.file === 'verifying'
          ? 'Verifying guest image…'
          : p
            ? `Loading guest image: ${(p.loaded / MB).toFixed(1)} of ${(p.total / MB).toFixed(1)} MB`
            : 'Loading guest image…'}
      </div>
      <div className="progress-track">
        <div className="progress-fill" style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      </div>
    </div>
  );
}

const FATAL_TITLES = {
  'image-missing': 'The guest image is missing',
  'image-checksum': 'The guest image is damaged',
  unsupported: 'This browser cannot run the lab',
  crash: 'The VM crashed',
  'disk-in-use': 'Disk in use by another tab',
  'disk-missing': 'The disk does not exist',
  'disk-invalid': 'The disk cannot be used',
} as const;

function FatalPanel({ vm, onRestart, onBoot }: { vm: VmSnapshot; onRestart(): void; onBoot(d: DiskAttachment | null): void }) {
  const f = vm.fatal!;
  const disk = vm.diskChoice;
  return (
    <div className="fatal" role="alert" data-testid="fatal">
      <h2>{FATAL_TITLES[f.kind]}</h2>
      <p data-testid="fatal-message">{f.message}</p>
      {f.kind.startsWith('image') && (
        <p>
          Rebuild it with <code>guest/build.sh</code>, or check that the server serves <code>guest/</code>.
        </p>
      )}
      {f.kind === 'disk-in-use' && <p>Its data is safe: this tab did not touch it.</p>}
      <div className="actions">
        {f.kind.startsWith('disk') ? (
          <>
            <button type="button" onClick={() => onBoot(null)}>
              Boot without the disk
            </button>
            {f.kind === 'disk-in-use' && disk && (
              <button type="button" onClick={() => onBoot({ name: disk.name, readOnly: true })}>
                Boot with it read-only
              </button>
            )}
          </>
        ) : (
          <button type="button" onClick={onRestart}>
            Restart the VM
          </button>
        )}
      </div>
    </div>
  );
}

export function App({ client, onBoot, lessons }: { client: VmClient; onBoot(disk: DiskAttachment | null): void; lessons: LessonEngine }) {
  const vm = useVm(client);
  const restart = () => client.start();
  const inspecting = useSyncExternalStore(
    (l) => client.inspector.subscribe(l),
    () => client.inspector.visible,
  );
  const inLesson = useSyncExternalStore(
    (l) => lessons.subscribe(l),
    () => lessons.current.lesson !== undefined,
  );
  const opfs = typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';
  return (
    <div className="app">
      <StatusLine vm={vm} onRestart={restart} inspecting={inspecting} onInspect={() => client.inspector.setVisible(!inspecting)} />
      {!opfs && (
        <div className="warning" role="status">
          This browser has no Origin Private File System: persistent disks are unavailable.
        </div>
      )}
      {vm.deviceErrors.map((e, i) => (
        <div className="warning" role="status" key={i} data-testid="device-error">
          {e.device}: {e.reason} (the device needs a reset)
        </div>
      ))}
      <div className="body">
        <main className="pane">
          {vm.state === 'loading' && <LoadProgressBar vm={vm} />}
          {vm.state === 'error' && vm.fatal && <FatalPanel vm={vm} onRestart={restart} onBoot={onBoot} />}
          <Terminal client={client} boot={vm.boot} />
        </main>
        {inspecting && <InspectorPanel client={client} />}
        <aside className={`side ${inLesson ? 'in-lesson' : ''}`}>
          <LessonPanel engine={lessons} />
          {opfs && !inLesson && <DiskPanel vm={vm} onBoot={onBoot} />}
          {opfs && !inLesson && <StatesPanel vm={vm} client={client} />}
          <NetPanel vm={vm} client={client} />
        </aside>
      </div>
    </div>
  );
}
