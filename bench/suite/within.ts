/**
 * Every wait in the benchmark is bounded: a VM that never boots, a transfer that never
 * connects or an echo that never returns becomes an error naming the step, instead of a run
 * that never ends.
 */
export function within<T>(work: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: no result after ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** How long a boot to the prompt may take on a loaded 2-core machine (it takes 4–8 s). */
export const BOOT_LIMIT_MS = 180_000;
