/**
 * `npm run crash-loop -- [--rounds N] [--seed S] [--max-kill-ms MS] [--minutes M] [--keep]
 * [--profile DIR] [--dist DIR] [--no-strace] [--corrupt-round R]`: crash safety of the disk
 * against the real browser. (--corrupt-round zeroes a block of round R's synced file in the
 * OPFS file after the kill: a check of the checks, which must then report that round LOST.)
 *
 * Each round the guest writes a file of known content to the ext4 disk and `sync`s it
 * (run() answers only after sync returned, so every FLUSH it sent was completed by our
 * device), then keeps writing and syncing other files, and after a random delay the whole
 * Chromium process group is SIGKILLed. Before relaunching on the same profile the host
 * checks the OPFS file as the browser left it (e2fsck after a journal replay; every synced
 * file read back with debugfs); after relaunching and booting the same disk the guest checks
 * that it mounted read-write and that every file synced in any round so far reads back
 * with the right md5. With strace, each round also checks that the pwrite()s of the synced
 * file's blocks (located with debugfs after the kill; without it, pwrites starting with its
 * bytes) were followed by an fdatasync() of the disk file before the guest's sync returned.
 *
 * File contents are derived from (round, line) — `seq` of 15-digit numbers in the guest, 256
 * unique 16-byte lines per 4 KiB block — so the host knows what each file must hold without
 * trusting the guest, and a stale, zeroed or misplaced block shows. Needs the built app
 * (the npm script builds it first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { DEFAULT_DISK } from '../src/disks/disk-store.ts';
import { launchOwnedChromium, liveMembers, type OwnedChromium } from '../e2e/owned-chromium.ts';
import { summary } from './stats.ts';

// ---------------------------------------------------------------- options
const args = process.argv.slice(2);
function opt(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const rounds = Number(opt('--rounds') ?? 20);
const seed = Number(opt('--seed') ?? Math.floor(Math.random() * 2 ** 31));
const maxKillMs = Number(opt('--max-kill-ms') ?? 5000);
// Bound on the whole run: 45 s a round (20 rounds: 15 min; they take 5–10 min, the upper
// end on a 2-core machine busy with other work) unless told otherwise.
const minutes = Number(opt('--minutes') ?? Math.max(3, rounds * 0.75));
const keep = args.includes('--keep');
const corruptRound = Number(opt('--corrupt-round') ?? 0);
for (const [name, v] of [['--rounds', rounds], ['--seed', seed], ['--max-kill-ms', maxKillMs], ['--minutes', minutes]] as const) {
  if (!Number.isFinite(v) || v < 0 || (name === '--rounds' && (!Number.isInteger(v) || v < 1 || v > 8999))) {
    console.error(`crash-loop: bad ${name}`);
    process.exit(2);
  }
}

/** mulberry32: a small seeded PRNG, so --seed replays the same sizes and kill moments. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = prng(seed);
const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

// ---------------------------------------------------------------- file contents
const LINE = 16; // 15 digits and a newline
const UNSYNCED_LINES = 16384; // 256 KiB per unsynced file

/** What `seq first first+lines-1` prints (first ≥ 1e14: always 15 digits). */
function pattern(first: number, lines: number): Buffer {
  const parts: string[] = new Array(lines);
  for (let i = 0; i < lines; i++) parts[i] = `${first + i}\n`;
  return Buffer.from(parts.join(''), 'latin1');
}
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
/** Round r's synced file starts at 1e14 + r·1e10, its unsynced files (all alike) 5e9 later. */
const syncedFirst = (r: number) => 1e14 + r * 1e10;
const unsyncedFirst = (r: number) => syncedFirst(r) + 5e9;

interface SyncedFile {
  name: string;
  round: number;
  bytes: number;
  md5: string;
}
const synced: SyncedFile[] = [];
const fileName = (r: number) => `s${String(r).padStart(4, '0')}.bin`;

// ---------------------------------------------------------------- the browser and the guest
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.resolve(opt('--dist') ?? path.join(root, 'dist'));
if (!existsSync(path.join(dist, 'index.html'))) {
  console.error('crash-loop: no built app in dist/: run "npm run build" first (npm run crash-loop does)');
  process.exit(2);
}
const server = createAppServer({ distDir: dist, host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
// Same server (so the same origin and OPFS) for every relaunch; no NIC: nothing to wait for.
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/?disk=${DEFAULT_DISK.name}&net=none`;
const profile = opt('--profile') ?? mkdtempSync(path.join(tmpdir(), 'vlab-crash-loop-'));
const scratch = mkdtempSync(path.join(tmpdir(), 'vlab-crash-img-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${secs(ms)}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** One guest command; throws on a non-zero status unless `allowFail`. */
async function sh(page: Page, cmd: string, timeoutMs = 60_000, allowFail = false): Promise<string> {
  const r = await withTimeout(
    page.evaluate(([c, t]) => window.virtioLab.run(c, { timeoutMs: t }), [cmd, timeoutMs] as const),
    timeoutMs + 5000,
    cmd,
  );
  if (r.status !== 0 && !allowFail) throw new Error(`guest: "${cmd}" exited ${r.status}: ${r.output.trim().slice(-400)}`);
  return r.output;
}

interface Booted {
  chrome: OwnedChromium;
  page: Page;
  bootMs: number;
  log: string;
}

async function launchAndBoot(): Promise<Booted> {
  const t0 = Date.now();
  const chrome = await launchOwnedChromium(profile);
  try {
    const page = await chrome.newPage();
    await page.goto(url);
    await withTimeout(page.evaluate(() => window.virtioLab.ready), 120_000, 'boot');
    return { chrome, page, bootMs: Date.now() - t0, log: await page.evaluate(() => window.virtioLab.serialLog()) };
  } catch (e) {
    await chrome.kill();
    throw e;
  }
}

// ---------------------------------------------------------------- host-side checks of the OPFS file
const hostTools = ['e2fsck', 'debugfs'].every((t) => spawnSync('sh', ['-c', `command -v ${t} || test -x /sbin/${t}`]).status === 0);

/** The disk's backing file in the profile: Chromium keeps OPFS files under obfuscated names. */
function opfsFile(size: number): string | undefined {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size === size) found.push(p);
    }
  };
  const fsDir = path.join(profile, 'Default', 'File System');
  if (existsSync(fsDir)) walk(fsDir);
  return found.length === 1 ? found[0] : undefined;
}

function run(cmd: string, argv: string[]): { status: number; out: string; stdout: string } {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` } });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout ?? '' };
}

interface HostCheck {
  problems: string[];
  unsyncedFiles: number;
  unsyncedBytes: number;
  /** Byte ranges [start, end) of the disk holding `locate`'s blocks (debugfs), if asked and found. */
  ranges?: [number, number][];
}

/**
 * On a copy of the disk as the killed browser left it: replay the journal, fsck must find
 * nothing; every synced file must hold its pattern; unsynced survivors must hold a prefix
 * of theirs (ext4 data=ordered never exposes blocks the file did not write).
 */
function hostCheck(round: number, src: string, locate?: string): HostCheck {
  const problems: string[] = [];
  const res: HostCheck = { problems, unsyncedFiles: 0, unsyncedBytes: 0 };
  const img = path.join(scratch, 'disk.img');
  copyFileSync(src, img);
  try {
    const replay = run('e2fsck', ['-y', '-E', 'journal_only', img]);
    if (replay.status > 1) problems.push(`host: journal replay: e2fsck exited ${replay.status}: ${replay.out.trim()}`);
    const fsck = run('e2fsck', ['-fn', img]);
    if (fsck.status !== 0) problems.push(`host: e2fsck -fn exited ${fsck.status}: ${fsck.out.trim().split('\n').slice(0, 12).join(' | ')}`);

    if (locate) {
      const blockSize = Number(/Block size:\s+(\d+)/.exec(run('debugfs', ['-R', 'stats', img]).out)?.[1]);
      // stdout only: debugfs's banner on stderr ("debugfs 1.47.0 (5-Feb-2023)") holds numbers
      // too, and taken for blocks they named the superblock as the file's.
      const blocks = run('debugfs', ['-R', `blocks /${locate}`, img]).stdout.match(/\d+/g)?.map(Number) ?? [];
      if (blockSize > 0 && blocks.length) res.ranges = blocks.map((b) => [b * blockSize, (b + 1) * blockSize]);
    }
    const ls = run('debugfs', ['-R', 'ls -p /', img]);
    // "/inode/mode/uid/gid/name/size/"
    const files = new Map<string, number>();
    for (const m of ls.out.matchAll(/^\/\d+\/\d+\/\d+\/\d+\/([^/]+)\/(\d*)\/$/gm)) files.set(m[1], Number(m[2] || 0));
    const out = path.join(scratch, 'files');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    const wanted = [...files.keys()].filter((n) => /^[su]\d+\.bin$/.test(n));
    const cmdFile = path.join(scratch, 'dump.cmds');
    const cmds = wanted.map((n) => `dump /${n} ${path.join(out, n)}`).join('\n');
    writeFileSync(cmdFile, cmds);
    if (wanted.length) run('debugfs', ['-f', cmdFile, img]);
    const read = (n: string) => (existsSync(path.join(out, n)) ? readFileSync(path.join(out, n)) : undefined);
    for (const f of synced) {
      const got = read(f.name);
      if (!got) problems.push(`host: synced ${f.name} is missing`);
      else if (got.length !== f.bytes || md5(got) !== f.md5) problems.push(`host: synced ${f.name}: ${got.length} bytes, md5 ${md5(got)}, want ${f.bytes} bytes, md5 ${f.md5}`);
    }
    for (const n of wanted.filter((n) => n.startsWith('u'))) {
      const got = read(n)!;
      const want = pattern(unsyncedFirst(round), UNSYNCED_LINES);
      res.unsyncedFiles++;
      res.unsyncedBytes += got.length;
      if (got.length > want.length || !got.equals(want.subarray(0, got.length))) {
        problems.push(`host: unsynced ${n} (${got.length} bytes) holds data it never wrote`);
      }
    }
  } finally {
    rmSync(img, { force: true });
  }
  return res;
}

/** --corrupt-round: zero the 1 KiB (the fs block size here) that holds round r's first line. */
function corruptSynced(file: string, r: number): void {
  const img = readFileSync(file);
  const at = img.indexOf(`${syncedFirst(r)}\n${syncedFirst(r) + 1}\n`);
  if (at < 0 || at % 1024) throw new Error(`--corrupt-round ${r}: the file's first block is not in the image (${at})`);
  const fd = openSync(file, 'r+');
  writeSync(fd, new Uint8Array(1024), 0, 1024, at);
  closeSync(fd);
  console.log(`    (zeroed the block at byte ${at} of the disk, the start of ${fileName(r)})`);
}

// ---------------------------------------------------------------- FLUSH reaching the OS
/*
 * A SIGKILL cannot lose what the renderer already pwrite()d (the kernel's page cache
 * outlives the process), so the kills alone cannot tell a flushed write from an unflushed
 * one. strace can: while the guest syncs a round's file, trace the workers'
 * pwrite/fdatasync on the disk's OPFS file; every pwrite of that file's blocks must be
 * followed by an fdatasync/fsync of it before the guest's sync returned (FLUSH → our device's
 * backend.flush() → SyncAccessHandle.flush()).
 */
const haveStrace = !args.includes('--no-strace') && spawnSync('sh', ['-c', 'command -v strace']).status === 0;

/** A traced pwrite of the disk file: when it returned, where, how many bytes. */
interface TracedWrite {
  t: number;
  offset: number;
  bytes: number;
}

interface FlushOutcome {
  problem?: string;
  dataBytes: number;
  syncs: number;
  /** Every pwrite of the disk file up to the sync's return, and the last fdatasync/fsync. */
  writes: TracedWrite[];
  lastSync: number;
}

interface FlushTrace {
  /** Analyse what happened up to `untilMs` (Date.now() when the guest's sync returned), detach. */
  finish(untilMs: number, prefix: string): Promise<FlushOutcome>;
}

/**
 * The strace verdict by where the synced file's blocks are on the disk (from debugfs after
 * the kill), not by the first bytes of a pwrite: a write cache may carry the file's blocks in
 * a call that starts at another block. Some pwrite must have covered them, and an fdatasync
 * must have followed the last such pwrite before the guest's sync returned.
 */
function flushVerdict(trace: FlushOutcome, ranges: readonly [number, number][]): FlushOutcome {
  let lastData = -1;
  let dataBytes = 0;
  for (const w of trace.writes) {
    let overlap = 0;
    for (const [start, end] of ranges) overlap += Math.max(0, Math.min(end, w.offset + w.bytes) - Math.max(start, w.offset));
    if (overlap === 0) continue;
    dataBytes += overlap;
    lastData = Math.max(lastData, w.t);
  }
  const verdict = { ...trace, dataBytes, problem: undefined as string | undefined };
  if (lastData < 0) verdict.problem = "strace: saw no pwrite of the synced file's blocks";
  else if (trace.lastSync < lastData) verdict.problem = "strace: no fdatasync of the disk after the synced file's blocks were written, yet the guest's sync returned";
  return verdict;
}

async function traceFlushes(chrome: OwnedChromium, diskFile: string): Promise<FlushTrace | undefined> {
  // Only the renderers' worker threads: SyncAccessHandle I/O runs on the worker's own thread,
  // and tracing every thread (each futex, each timer) would slow the guest down twice over.
  const threads: string[] = [];
  for (const pid of liveMembers(chrome.proc.pid!)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith('DedicatedWorker')) threads.push(tid);
      }
    } catch {
      /* exited meanwhile */
    }
  }
  if (!threads.length) return undefined;
  const st = spawn('strace', ['-y', '-ttt', '-s', '12', '-e', 'trace=pwrite64,pwritev,pwritev2,fdatasync,fsync', ...threads.flatMap((t) => ['-p', t])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  st.stderr.setEncoding('utf8');
  st.stderr.on('data', (d: string) => (log += d));
  const exited = new Promise((r) => st.once('exit', r));
  // strace says "Process N attached" once per thread; the write must not start before.
  for (let i = 0; (log.match(/attached/g) ?? []).length < threads.length; i++) {
    if (i === 100 || st.exitCode !== null) {
      st.kill('SIGKILL');
      return undefined; // no ptrace here: the round runs without this check
    }
    await sleep(50);
  }
  return {
    async finish(untilMs, prefix) {
      await sleep(300); // let strace's output catch up with the guest
      st.kill('SIGINT'); // detaches; the renderer runs on
      await exited;
      let lastData = -1;
      let lastSync = -1;
      let dataBytes = 0;
      let syncs = 0;
      // A call another thread interrupts is logged in two lines ("<unfinished ...>", then
      // "<... resumed>"): it counts when it returned.
      const pending = new Map<string, { call: string; data: string; rest: string }>();
      const writes: TracedWrite[] = [];
      const done = (t: number, call: string, data: string, ret: number, rest: string) => {
        if (t > untilMs || ret < 0) return;
        if (call.endsWith('sync')) {
          lastSync = Math.max(lastSync, t);
          syncs++;
          return;
        }
        // pwrite64(fd<path>, "…"..., count, offset)
        const at = /, (\d+), (\d+)(?:\)| <unfinished)/.exec(rest);
        if (at) writes.push({ t, offset: Number(at[2]), bytes: ret });
        if (data.startsWith(prefix)) {
          lastData = Math.max(lastData, t);
          dataBytes += ret;
        }
      };
      for (const line of log.split('\n')) {
        const start = /^(?:\[pid\s+(\d+)\] )?(\d+\.\d+) (pwrite64|fdatasync|fsync)\(\d+<([^>]*)>(?:, "(\d*))?(.*)$/.exec(line);
        if (start) {
          if (start[4] !== diskFile) continue;
          const ret = /\) = (-?\d+)$/.exec(start[6]);
          if (ret) done(Number(start[2]) * 1000, start[3], start[5] ?? '', Number(ret[1]), start[6]);
          else if (start[6].endsWith('<unfinished ...>')) pending.set(start[1] ?? '', { call: start[3], data: start[5] ?? '', rest: start[6] });
          continue;
        }
        const resumed = /^(?:\[pid\s+(\d+)\] )?(\d+\.\d+) <\.\.\. (\w+) resumed>.*= (-?\d+)$/.exec(line);
        const p = resumed && pending.get(resumed[1] ?? '');
        if (p && p.call === resumed![3]) {
          pending.delete(resumed![1] ?? '');
          done(Number(resumed![2]) * 1000, p.call, p.data, Number(resumed![4]), p.rest);
        }
      }
      // By first bytes: the verdict when the host cannot locate the file's blocks (flushVerdict).
      const outcome: FlushOutcome = { dataBytes, syncs, writes, lastSync };
      if (lastData < 0) outcome.problem = 'strace: saw no pwrite of the synced file';
      else if (lastSync < lastData) outcome.problem = 'strace: no fdatasync of the disk after the synced file was written, yet the guest\'s sync returned';
      return outcome;
    },
  };
}

// ---------------------------------------------------------------- guest-side checks after relaunch
async function guestCheck(b: Booted): Promise<string[]> {
  const problems: string[] = [];
  const mounted = await sh(b.page, `grep -c '^/dev/vda /mnt/disk ext4 rw' /proc/mounts`, 30_000, true);
  if (mounted.trim() !== '1') {
    problems.push(`guest: /dev/vda is not mounted read-write at /mnt/disk (boot log: ${b.log.split('\n').filter((l) => l.includes('/dev/vda')).join(' | ')})`);
    return problems;
  }
  const bad = await sh(b.page, `dmesg | grep -iE 'EXT4-fs (error|warning)|JBD2.*(error|abort)|I/O error'`, 30_000, true);
  if (bad.trim()) problems.push(`guest: kernel says: ${bad.trim().split('\n').slice(0, 5).join(' | ')}`);
  const devErrors = await b.page.evaluate(() => window.virtioLab.status().deviceErrors);
  if (devErrors.length) problems.push(`guest: device errors: ${JSON.stringify(devErrors).slice(0, 300)}`);
  if (synced.length) {
    const out = await sh(b.page, `cd /mnt/disk && md5sum ${synced.map((f) => f.name).join(' ')}`, 120_000, true);
    const got = new Map([...out.matchAll(/^([0-9a-f]{32})\s+(\S+)$/gm)].map((m) => [m[2], m[1]]));
    for (const f of synced) {
      const sum = got.get(f.name);
      if (sum !== f.md5) problems.push(`guest: synced ${f.name} (round ${f.round}) ${sum ? `md5 ${sum}, want ${f.md5}` : 'is missing or unreadable'}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------- the loop
interface RoundFigures {
  ms: number;
  killMs: number;
  syncedBytes: number;
  writeMs: number;
  syncMs: number;
  bootMs: number;
  recovered: boolean;
  unsyncedBytes: number;
  /** fdatasyncs of the disk file seen (strace) while the synced file was written and synced. */
  flushes: number | undefined;
  intact: boolean;
}
const figures: RoundFigures[] = [];
const deadline = Date.now() + minutes * 60_000;
const t0 = Date.now();

console.log(
  `crash-loop: ${rounds} round(s), seed ${seed} (--seed ${seed} replays the sizes and kill moments), ` +
    `SIGKILL 0–${maxKillMs} ms into the writes after each sync, bound ${minutes} min; profile ${profile}` +
    (hostTools ? '' : '\n  (no e2fsck/debugfs on this host: only the guest checks run)'),
);

let booted: Booted | undefined;
let exitCode = 0;
try {
  booted = await launchAndBoot();
  const formatted = booted.log.includes('formatting /dev/vda');
  const sectors = Number((await sh(booted.page, 'cat /sys/block/vda/size')).trim());
  const diskBytes = sectors * 512;
  const diskFile = opfsFile(diskBytes);
  if (!diskFile) console.log("  (could not single out the disk's OPFS file: no host or strace checks)");
  const first = await guestCheck(booted);
  if (first.length) throw new Error(`first boot: ${first.join('; ')}`);
  console.log(`first boot: ${secs(booted.bootMs)}, /dev/vda ${diskBytes >> 20} MiB${formatted ? ' (formatted ext4)' : ''}`);

  for (let r = 1; r <= rounds; r++) {
    if (Date.now() > deadline) {
      console.log(`stopping: the ${minutes}-minute bound is reached`);
      break;
    }
    const rt0 = Date.now();
    const b: Booted = booted!;
    // Synced: 4 Ki–32 Ki lines (64–512 KiB), then sync; run() answers after sync returned.
    const lines = between(4096, 32768);
    const name = fileName(r);
    const s0 = Date.now();
    await sh(b.page, `seq ${syncedFirst(r)} ${syncedFirst(r) + lines - 1} > /mnt/disk/${name}`, 120_000);
    // Traced from here: the file's blocks are still delalloc'ed in the guest's page cache
    // (writeback would start after 30 s), so the sync writes them all.
    const trace = diskFile && haveStrace ? await traceFlushes(b.chrome, diskFile) : undefined;
    const s1 = Date.now();
    await sh(b.page, 'sync', 120_000);
    const syncMs = Date.now() - s1;
    const writeMs = s1 - s0;
    let flushes = await trace?.finish(Date.now(), String(syncedFirst(r)).slice(0, 10));
    synced.push({ name, round: r, bytes: lines * LINE, md5: md5(pattern(syncedFirst(r), lines)) });

    // Unsynced: copies of a 256 KiB file (made once: seq is slow, cp is not) back to back,
    // every other one followed by a sync, so the disk is busy writing and flushing until the
    // browser dies — and nothing the host recorded depends on these.
    await sh(b.page, `seq ${unsyncedFirst(r)} ${unsyncedFirst(r) + UNSYNCED_LINES - 1} > /tmp/u.pat`);
    await sh(b.page, `(i=0; while :; do cp /tmp/u.pat /mnt/disk/u$i.bin; [ $((i%2)) = 1 ] && sync; i=$((i+1)); done) </dev/null >/dev/null 2>&1 &`);
    const killMs = between(0, maxKillMs);
    await sleep(killMs);
    await b.chrome.kill();
    booted = undefined;
    if (r === corruptRound && diskFile) corruptSynced(diskFile, r);

    const host = hostTools && diskFile ? hostCheck(r, diskFile, name) : undefined;
    if (flushes && host?.ranges) flushes = flushVerdict(flushes, host.ranges);
    booted = await launchAndBoot();
    const recovered = booted.log.includes('recovery complete');
    const guest = await guestCheck(booted);
    // Leftovers of the unsynced writer go; the synced files stay and are checked every round.
    await sh(booted.page, 'rm -f /mnt/disk/u*.bin && sync');

    const problems = [...(flushes?.problem ? [flushes.problem] : []), ...(host?.problems ?? []), ...guest];
    const intact = problems.length === 0;
    const f: RoundFigures = {
      ms: Date.now() - rt0,
      killMs,
      syncedBytes: lines * LINE,
      writeMs,
      syncMs,
      bootMs: booted.bootMs,
      recovered,
      unsyncedBytes: host?.unsyncedBytes ?? 0,
      flushes: flushes?.syncs,
      intact,
    };
    figures.push(f);
    const total = synced.reduce((n, s) => n + s.bytes, 0);
    console.log(
      `round ${String(r).padStart(2)}/${rounds}: synced ${kib(f.syncedBytes)} (write ${secs(writeMs)}, sync ${secs(syncMs)}` +
        (flushes ? `, ${flushes.syncs} fdatasync(s) around its ${kib(flushes.dataBytes)} of pwrites` : '') +
        `), SIGKILL ${killMs} ms into later writes; ` +
        (host ? `host: fsck ${host.problems.some((p) => p.includes('e2fsck')) ? 'FAILED' : 'clean'}, ${host.unsyncedFiles} later file(s) ${kib(host.unsyncedBytes)} on disk; ` : '') +
        `relaunch+boot ${secs(f.bootMs)}${recovered ? ' (journal replayed)' : ''}; ` +
        `${synced.length} synced file(s) ${kib(total)}: ${intact ? 'intact' : 'LOST'} [${secs(f.ms)}]`,
    );
    for (const p of problems) console.log(`    ${p}`);
  }
} catch (e) {
  console.error(`crash-loop: ${(e as Error).stack ?? e}`);
  exitCode = 1;
} finally {
  await booted?.chrome.kill();
  server.close();
  rmSync(scratch, { recursive: true, force: true });
}

const intact = figures.filter((f) => f.intact).length;
if (figures.length) {
  console.log('');
  console.log(`time per round:     ${summary(figures.map((f) => f.ms / 1000), 's', 1)}`);
  console.log(`relaunch to prompt: ${summary(figures.map((f) => f.bootMs / 1000), 's', 1)}`);
  console.log(`kill into writes:   ${summary(figures.map((f) => f.killMs))}`);
  console.log(`synced per round:   ${summary(figures.map((f) => f.syncedBytes / 1024), 'KiB')}`);
  console.log(`  its write:        ${summary(figures.map((f) => f.writeMs / 1000), 's', 1)}`);
  console.log(`  its sync:         ${summary(figures.map((f) => f.syncMs / 1000), 's', 1)}`);
  if (hostTools) console.log(`later files on disk: ${summary(figures.map((f) => f.unsyncedBytes / 1024), 'KiB')}`);
  const traced = figures.filter((f) => f.flushes !== undefined);
  if (traced.length) console.log(`fdatasync per sync: ${summary(traced.map((f) => f.flushes!), 'calls')} (strace, ${traced.length} round(s))`);
  console.log(`journal replayed at mount in ${figures.filter((f) => f.recovered).length} of ${figures.length} boots; total ${secs(Date.now() - t0)}`);
}
console.log(`${intact} of ${rounds} intact`);
if (intact !== rounds) exitCode = 1;
if (exitCode === 0 && !keep && !opt('--profile')) rmSync(profile, { recursive: true, force: true });
else console.log(`profile kept: ${profile}`);
process.exit(exitCode);
