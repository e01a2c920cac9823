/**
 * Run a job after the current task, once the event loop has run whatever else waits (the
 * emulator's next slice, the page's messages): where a device continues work that spent its
 * per-pass budget. A MessageChannel rather than setTimeout(0), which browsers clamp to 4 ms
 * once timers nest, and v86's loop runs from timers.
 */
const jobs: Array<() => void> = [];
let channel: MessageChannel | undefined;

function runJobs(): void {
  // Only those queued before this task: a job that queues another waits for the next one.
  for (const job of jobs.splice(0, jobs.length)) {
    try {
      job();
    } catch (error) {
      // Jobs contain their own errors (they report to their device); never stop the others.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

export function macrotask(job: () => void): void {
  jobs.push(job);
  if (jobs.length > 1) return;
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.onmessage = runJobs;
    // Node: an idle port must not keep the process alive.
    (channel.port1 as { unref?: () => void }).unref?.();
  }
  channel.port2.postMessage(0);
}
