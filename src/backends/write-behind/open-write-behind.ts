/**
 * Opens a disk for write-behind in the VM worker: a Web Lock named after the disk keeps other
 * tabs out (the handles are 'readwrite-unsafe', which OPFS lets coexist), this worker gets a
 * handle to read from, and a writer worker gets one to write and flush on.
 *
 * Undefined where the browser cannot (no Web Locks, no nested workers, no 'readwrite-unsafe'):
 * the caller then opens the disk the synchronous way. A disk another tab holds is DiskError
 * 'disk-in-use' either way.
 */
import { OpfsBlockBackend } from '../opfs-block-backend.ts';
import { DiskError } from '../../disks/disk-names.ts';
import { WriteBehindCache } from './write-behind-cache.ts';
import type { OpenWriter, WriterOpened } from './protocol.ts';

/** How long a writer worker may take to open its handle before we give up on it. */
const WRITER_OPEN_MS = 10_000;

/** The lock that stands for "a VM has this disk", across tabs and workers. */
export function diskLockName(name: string): string {
  return `virtio-lab-disk:${name}`;
}

/** Holds the lock until release() is called; undefined if someone else holds it. */
async function takeLock(name: string): Promise<(() => void) | undefined> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  return new Promise((resolve, reject) => {
    navigator.locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(undefined);
          return undefined;
        }
        resolve(release);
        return held;
      })
      .catch(reject);
  });
}

/**
 * The writer worker: the lab's bundle of writer-worker.ts, or another script. The default
 * must stay written exactly so: Vite bundles a worker only from `new Worker(new URL(…))`.
 */
function createWriter(name: string, writerUrl: URL | string | undefined): Worker {
  const options: WorkerOptions = { type: 'module', name: `disk writer ${name}` };
  if (writerUrl !== undefined) return new Worker(writerUrl, options);
  return new Worker(new URL('./writer-worker.ts', import.meta.url), { type: 'module', name: `disk writer ${name}` });
}

function startWriter(name: string, writerUrl: URL | string | undefined): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = createWriter(name, writerUrl);
    const timer = setTimeout(() => fail(new Error('the disk writer did not open in time')), WRITER_OPEN_MS);
    const fail = (e: Error) => {
      clearTimeout(timer);
      worker.terminate();
      reject(e);
    };
    worker.onerror = (ev) => fail(new Error(`the disk writer failed to start: ${ev.message ?? 'its script did not load'}`));
    worker.onmessage = ({ data }: MessageEvent<WriterOpened>) => {
      clearTimeout(timer);
      worker.onmessage = null;
      worker.onerror = null;
      if (data.type === 'opened') resolve(worker);
      else fail(new Error(data.message));
    };
    worker.postMessage({ type: 'open', disk: name } satisfies OpenWriter);
  });
}

/** `writerUrl`: the writer worker's script (default: the lab's bundle of writer-worker.ts). */
/** Says why write-behind is off for this disk (the console of the VM's worker). */
function unavailable(name: string, why: string): undefined {
  console.warn(`disk "${name}": no write-behind (${why}); OPFS writes run on the emulator's thread`);
  return undefined;
}

export async function openWriteBehind(name: string, opts: { writerUrl?: URL | string } = {}): Promise<WriteBehindCache | undefined> {
  if (typeof navigator === 'undefined' || !navigator.locks) return unavailable(name, 'no Web Locks');
  if (typeof Worker === 'undefined') return unavailable(name, 'no workers inside workers');
  const release = await takeLock(diskLockName(name));
  if (!release) throw new DiskError('disk-in-use', `disk "${name}" is in use by another tab`);
  let reader: OpfsBlockBackend | undefined;
  try {
    reader = await OpfsBlockBackend.open(name, { shared: true });
  } catch (e) {
    release();
    if (e instanceof DiskError) throw e; // missing, invalid, in use by a tab that opened it exclusively
    return unavailable(name, `no 'readwrite-unsafe' handles: ${e instanceof Error ? e.message : String(e)}`);
  }
  let worker: Worker;
  try {
    worker = await startWriter(name, opts.writerUrl);
  } catch (e) {
    reader.close();
    release();
    return unavailable(name, e instanceof Error ? e.message : String(e));
  }
  const cache = new WriteBehindCache(reader, worker, {
    onClosed: () => {
      worker.terminate();
      release();
    },
  });
  worker.onerror = (ev) => cache.writerFailed(new Error(`the disk writer failed: ${ev.message}`));
  return cache;
}
