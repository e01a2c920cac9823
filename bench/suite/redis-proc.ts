/**
 * A throwaway redis-server on a free loopback port for benches: no persistence (no RDB
 * snapshots, no AOF), no service left behind. Stopped with SIGTERM by the caller.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './cluster-procs.ts';
import { procCpuMs } from './proc-cpu.ts';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The redis-server binary, or an Error that says how to install it. */
export function redisServerBinary(): string {
  for (const p of ['redis-server', '/usr/bin/redis-server', '/usr/sbin/redis-server']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {
      // next
    }
  }
  throw new Error('redis-server is not installed: the bus bench compares against it (Debian: apt-get install redis-server)');
}

export interface RedisProc {
  url: string;
  proc: ChildProcess;
  cpuMs(): number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisProc> {
  const bin = redisServerBinary();
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((r) => {
      const c = createConnection(port, HOST, () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (up) break;
    if (proc.exitCode !== null || i >= 100) throw new Error(`redis-server did not start (exit ${proc.exitCode})`);
    await sleep(100);
  }
  return {
    url: `redis://${HOST}:${port}`,
    proc,
    cpuMs: () => procCpuMs(proc.pid),
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}
