/** What the page shows of a state file: its header's meta, in the protocol's shape. */
import type { StateInfo } from '../protocol.ts';
import type { SnapshotMeta } from './meta.ts';

export function stateInfo(meta: SnapshotMeta, bytes: number): StateInfo {
  return {
    name: meta.name,
    kind: meta.kind,
    createdAt: meta.createdAt,
    bytes,
    ring: meta.ring,
    ...(meta.disk ? { disk: { name: meta.disk.name, size: meta.disk.size, included: meta.disk.included } } : {}),
  };
}
