/**
 * dist/ on a plain static host: copied under a sub-path of a temp dir and served by
 * `python3 -m http.server` on loopback (no CSP, no relay, no NET_HEADER), the way a lab lands
 * on GitHub Pages or a course's web space.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface StaticHost {
  /** The lab's URL, ending in the sub-path and '/'. */
  url: string;
  close(): void;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function startStaticHost(distDir: string, subPath = 'labs/virtio'): Promise<StaticHost> {
  const root = mkdtempSync(path.join(tmpdir(), 'vlab-static-'));
  mkdirSync(path.dirname(path.join(root, subPath)), { recursive: true });
  cpSync(distDir, path.join(root, subPath), { recursive: true });
  const port = await freePort();
  const child: ChildProcess = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], {
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}/${subPath}/`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    close() {
      child.kill();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
