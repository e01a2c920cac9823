/**
 * A Chromium process we own on a persistent profile, for crash tests: launched directly (not
 * by Playwright, which would close it cleanly), driven over CDP, and killed with SIGKILL —
 * the whole process group, so no renderer outlives the browser and keeps writing the disk
 * while its successor opens it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumExecutable } from './chromium.ts';

export interface OwnedChromium {
  readonly proc: ChildProcess;
  readonly browser: Browser;
  /** A page of the browser's default context (the profile's storage, OPFS included). */
  newPage(): Promise<Page>;
  /** SIGKILL the browser's whole process group; resolves once none of it is left running. */
  kill(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes of group `pgid` that still run (zombies left to a non-reaping init do not). */
export function liveMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid && f[0] !== 'Z' && f[0] !== 'X') out.push(Number(entry));
  }
  return out;
}

async function killGroup(proc: ChildProcess): Promise<void> {
  const pgid = proc.pid!;
  const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await exited;
  for (let i = 0; liveMembers(pgid).length > 0; i++) {
    if (i === 100) throw new Error(`Chromium processes ${liveMembers(pgid).join(', ')} survived SIGKILL`);
    await sleep(50);
  }
}

/**
 * Launches Chromium headless on `profile` (created if missing). The debugging port is
 * chosen by Chromium (port 0) and read from the profile's DevToolsActivePort, so parallel
 * runs never collide.
 */
export async function launchOwnedChromium(profile: string): Promise<OwnedChromium> {
  const portFile = path.join(profile, 'DevToolsActivePort');
  rmSync(portFile, { force: true }); // a killed browser leaves its old one behind
  const exe = chromiumExecutable() ?? chromium.executablePath();
  // detached: its own process group, which kill() takes down as a whole.
  const proc = spawn(exe, [...CHROMIUM_ARGS, '--headless', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], {
    stdio: 'ignore',
    detached: true,
  });
  proc.unref();
  const kill = () => killGroup(proc);
  try {
    for (let i = 0; i < 300; i++) {
      if (proc.exitCode !== null) throw new Error(`Chromium exited at start (code ${proc.exitCode})`);
      let port: number | undefined;
      try {
        port = Number(readFileSync(portFile, 'utf8').split('\n')[0]) || undefined;
      } catch {
        port = undefined;
      }
      if (port) {
        const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
        return { proc, browser, kill, newPage: () => browser.contexts()[0].newPage() };
      }
      await sleep(100);
    }
    throw new Error('Chromium did not open its debugging port within 30 s');
  } catch (e) {
    await kill();
    throw e;
  }
}
