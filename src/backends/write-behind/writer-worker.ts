/**
 * The write-behind writer: a dedicated worker of the VM worker's own that holds a second
 * SyncAccessHandle ('readwrite-unsafe') on the disk file and stores the cache's batches and
 * flushes on it (serve-writer.ts), off the emulator's thread.
 */
import { OpfsBlockBackend } from '../opfs-block-backend.ts';
import { serveWriter, type WriterEndpoint } from './serve-writer.ts';
import type { OpenWriter, WriterOpened } from './protocol.ts';

const scope = self as unknown as WriterEndpoint & { postMessage(message: WriterOpened): void };

scope.onmessage = ({ data }) => {
  const msg = data as unknown as OpenWriter;
  if (msg?.type !== 'open') return;
  scope.onmessage = null; // one disk per writer
  OpfsBlockBackend.open(msg.disk, { shared: true }).then(
    (medium) => {
      serveWriter(scope, medium);
      scope.postMessage({ type: 'opened' } satisfies WriterOpened);
    },
    (e: unknown) => scope.postMessage({ type: 'open-failed', message: e instanceof Error ? e.message : String(e) } satisfies WriterOpened),
  );
};
