/**
 * A `defer` for devices that serve kicks later: jobs wait until settle() runs them (what the
 * end of the emulator's time slice does in the lab), so a test or fuzz case can reset or kick
 * in between.
 */
export function manualDefer(): { defer: (job: () => void) => void; settle: () => void } {
  const jobs: Array<() => void> = [];
  return {
    defer: (job) => void jobs.push(job),
    settle: () => {
      for (let job = jobs.shift(); job; job = jobs.shift()) job();
    },
  };
}
