import { readFileSync } from 'node:fs';

/** utime + stime of a process in ms from /proc/<pid>/stat (USER_HZ is 100 on Linux; 0 elsewhere). */
export function procCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}
