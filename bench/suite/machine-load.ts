/**
 * How busy the rest of the machine was while a sample ran: CPU time the whole machine spent
 * (/proc/stat) minus what this process and its descendants (Chromium, the VMs) spent, in
 * cores. On a shared 2-core machine a sample during which others took half a core or more
 * measured them as much as us: the disk table drops it and says so.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { procCpuMs } from './proc-cpu.ts';

/** Busy ms of all CPUs (everything but idle and iowait; USER_HZ = 100). */
function machineBusyMs(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = cpu;
    return (user + nice + system + irq + softirq + (steal ?? 0)) * 10;
  } catch {
    return 0;
  }
}

/** This process and every descendant alive now. */
function ownTree(): number[] {
  const parent = new Map<number, number>();
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        /* gone meanwhile */
      }
    }
  } catch {
    return [process.pid];
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!mine.has(pid) && mine.has(ppid)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  return [...mine];
}

export interface LoadReading {
  /** Cores' worth of CPU other processes used, on average over the sample. */
  foreignCores: number;
  /** Ours (this process tree). */
  ownCores: number;
}

/** Start watching; call the result when the sample ends. */
export function watchMachineLoad(): () => LoadReading {
  const pids = ownTree();
  const t0 = performance.now();
  const busy0 = machineBusyMs();
  const own0 = pids.map(procCpuMs);
  return () => {
    const wall = performance.now() - t0;
    const own = pids.reduce((s, pid, i) => s + Math.max(0, procCpuMs(pid) - own0[i]), 0);
    const busy = machineBusyMs() - busy0;
    return { foreignCores: Math.max(0, busy - own) / wall, ownCores: own / wall };
  };
}
