/**
 * Saved VM states as files in OPFS /states: one file per state, NAME.vlstate. The boot
 * state (the lab booted to its first prompt, before any disk was read) of each machine
 * profile lives there too, under a name users cannot pick (it starts with '.'). Both the
 * page (list, download, upload, delete) and the VM worker (read, write) use this module.
 */

export const STATES_DIR = 'states';
export const STATE_SUFFIX = '.vlstate';
/** A state's name: what the page shows and `?state=NAME` takes. */
export const STATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/;

export class StateNameError extends Error {
  override readonly name = 'StateNameError';
}

export function validateStateName(name: string): void {
  if (!STATE_NAME.test(name)) {
    throw new StateNameError(`"${name}" is not a state name: 1–40 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** The hidden file of a boot state: one per profile (guest image, devices, ring layout). */
export function bootStateFile(profile: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(profile)) throw new Error(`bad boot state profile ${JSON.stringify(profile)}`);
  return `.boot-${profile}${STATE_SUFFIX}`;
}

export function stateFile(name: string): string {
  validateStateName(name);
  return `${name}${STATE_SUFFIX}`;
}

async function statesDir(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(STATES_DIR, { create: true });
}

export interface StateFileInfo {
  name: string;
  size: number;
  lastModified: number;
}

/** Users' states (not the boot states), by name. */
export async function listStateFiles(): Promise<StateFileInfo[]> {
  const dir = await statesDir();
  const out: StateFileInfo[] = [];
  for await (const [file, handle] of dir as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (handle.kind !== 'file' || !file.endsWith(STATE_SUFFIX) || file.startsWith('.')) continue;
    const f = await (handle as FileSystemFileHandle).getFile();
    out.push({ name: file.slice(0, -STATE_SUFFIX.length), size: f.size, lastModified: f.lastModified });
  }
  return out.sort((a, b) => b.lastModified - a.lastModified);
}

/** The file, or undefined when there is none. */
export async function stateBlob(file: string): Promise<File | undefined> {
  const dir = await statesDir();
  try {
    return await (await dir.getFileHandle(file)).getFile();
  } catch (e) {
    if ((e as DOMException).name === 'NotFoundError') return undefined;
    throw e;
  }
}

export async function readStateFile(file: string): Promise<Uint8Array | undefined> {
  const blob = await stateBlob(file);
  return blob && new Uint8Array(await blob.arrayBuffer());
}

/**
 * Writes the whole file or nothing: the bytes go to a temporary file, renamed over the old
 * one only when complete, so a full disk or a closed tab never leaves half a state.
 */
export async function writeStateFile(file: string, bytes: Uint8Array): Promise<void> {
  const dir = await statesDir();
  const tmp = `.tmp-${file}`;
  const handle = await dir.getFileHandle(tmp, { create: true });
  try {
    const w = await handle.createWritable();
    await w.write(bytes as Uint8Array<ArrayBuffer>);
    await w.close();
    await (handle as FileSystemFileHandle & { move(name: string): Promise<void> }).move(file);
  } catch (e) {
    await dir.removeEntry(tmp).catch(() => undefined);
    if ((e as DOMException).name === 'QuotaExceededError') {
      throw new Error(`not enough browser storage for this state (${(bytes.length / 1e6).toFixed(1)} MB): delete states or disks you no longer need`);
    }
    throw e;
  }
}

/** Boot states kept: one per device set in use; older profiles (another image…) go. */
export const BOOT_STATES_KEPT = 4;

/** The boot states' files, the most recently written first. */
export async function bootStatesNewestFirst(): Promise<string[]> {
  const dir = await statesDir();
  const boots: { file: string; at: number }[] = [];
  for await (const [file, handle] of dir as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (handle.kind !== 'file' || !file.startsWith('.boot-') || !file.endsWith(STATE_SUFFIX)) continue;
    boots.push({ file, at: (await (handle as FileSystemFileHandle).getFile()).lastModified });
  }
  return boots.sort((a, b) => b.at - a.at).map((b) => b.file);
}

/** Deletes all but the `keep` newest boot states. */
export async function pruneBootStates(keep = BOOT_STATES_KEPT): Promise<void> {
  const dir = await statesDir();
  for (const file of (await bootStatesNewestFirst()).slice(keep)) await dir.removeEntry(file).catch(() => undefined);
}

export async function deleteStateFile(file: string): Promise<void> {
  const dir = await statesDir();
  await dir.removeEntry(file).catch((e: DOMException) => {
    if (e.name !== 'NotFoundError') throw e;
  });
}
