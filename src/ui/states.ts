/**
 * The page's side of saved states: list them with what their headers say, download,
 * upload (checked before it is stored), delete. Saving and restoring go through the VM
 * worker (vm-client.ts).
 */
import type { StateInfo } from '../vm/protocol.ts';
import { readSnapshotMeta } from '../vm/snapshot/format.ts';
import { stateInfo } from '../vm/snapshot/state-info.ts';
import { deleteStateFile, listStateFiles, stateBlob, stateFile, STATE_NAME, STATE_SUFFIX, writeStateFile } from '../vm/snapshot/state-files.ts';

/** A state file and its header, or why the header cannot be read. */
export interface ListedState {
  name: string;
  info?: StateInfo;
  error?: string;
}

/** How much of a file the header can take (the format bounds it). */
const HEADER_READ = 80 * 1024;

async function headerOf(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.slice(0, HEADER_READ).arrayBuffer());
}

export async function listStates(): Promise<ListedState[]> {
  const files = await listStateFiles();
  return Promise.all(
    files.map(async (f): Promise<ListedState> => {
      try {
        const blob = await stateBlob(stateFile(f.name));
        if (!blob) return { name: f.name, error: 'gone' };
        return { name: f.name, info: { ...stateInfo(readSnapshotMeta(await headerOf(blob)), blob.size), name: f.name } };
      } catch (e) {
        return { name: f.name, error: (e as Error).message };
      }
    }),
  );
}

/** "state-2026-12-04-1830": a name for a save nobody named. */
export function defaultStateName(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `state-${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

/** A name for an uploaded file: its own name when it is a valid state name, else its header's. */
function uploadName(fileName: string, metaName: string): string {
  const base = fileName.endsWith(STATE_SUFFIX) ? fileName.slice(0, -STATE_SUFFIX.length) : fileName.replace(/\.[^.]*$/, '');
  const cleaned = base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[._-]+/, '').slice(0, 40);
  if (STATE_NAME.test(cleaned)) return cleaned;
  return STATE_NAME.test(metaName) ? metaName : defaultStateName();
}

/**
 * Stores an uploaded file as a state after reading its header (a file that is not a state,
 * or from a newer format, is refused here with the parser's message). Whether it fits this
 * guest image is checked when it is restored.
 */
export async function uploadState(file: File): Promise<StateInfo> {
  const meta = readSnapshotMeta(await headerOf(file));
  const name = uploadName(file.name, meta.name);
  await writeStateFile(stateFile(name), new Uint8Array(await file.arrayBuffer()));
  return { ...stateInfo(meta, file.size), name };
}

/** The state file as a Blob (what saveState() resolves with). */
export async function stateFileBlob(name: string): Promise<Blob> {
  const blob = await stateBlob(stateFile(name));
  if (!blob) throw new Error(`there is no state named "${name}"`);
  return blob;
}

export async function downloadState(name: string): Promise<void> {
  const blob = await stateFileBlob(name);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${name}${STATE_SUFFIX}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function deleteState(name: string): Promise<void> {
  await deleteStateFile(stateFile(name));
}
