import { useSyncExternalStore } from 'react';
import type { VmClient, VmSnapshot } from './vm-client.ts';

/** The VM's state as React state. */
export function useVm(client: VmClient): VmSnapshot {
  return useSyncExternalStore(
    (l) => client.subscribe(l),
    () => client.snapshot(),
  );
}
