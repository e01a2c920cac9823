/**
 * The JSON header of a state file: what it is (meta) and where its sections are, with the
 * format's bounds. `parseMeta` validates every field of a header read from a file; the
 * encoder builds the same object. Readers ignore keys they do not know; a change an older
 * reader must not ignore bumps FORMAT_VERSION.
 */
import { DISK_NAME, MEMORY_DISK } from '../../disks/disk-names.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { formatBytes, SnapshotError } from './snapshot-error.ts';
import { zstdCompressBound } from './zstd.ts';

export const FORMAT_VERSION = 1;

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Bounds on what a file may claim (docs/snapshot-format.md, "Bounds"). */
export const SNAPSHOT_LIMITS = {
  /** The JSON header, UTF-8. */
  headerBytes: 64 * KiB,
  /** Device state JSON, decompressed. */
  devicesBytes: 1 * MiB,
  /** v86's state beyond guest RAM (its devices, VGA memory, the rest of its save). */
  v86OverRam: 64 * MiB,
  /** Guest RAM: v86 keeps it in its own wasm memory; no lab guest comes near 2 GiB. */
  memoryMiB: 2048,
  /** The disk section (sparse index + compressed data). */
  diskData: 1 * GiB,
  /** A disk's size (the lab's largest template is 4 GiB). */
  diskSize: 16 * GiB,
  /** Snapshot and function names, in UTF-16 code units. */
  name: 100,
  /** PCI functions on the bus (a PCI bus has 32 slots). */
  functions: 32,
} as const;

export type SnapshotKind = 'boot' | 'saved';

/** The disk the VM had attached; `included`: its contents are in the file. */
export interface SnapshotDiskMeta {
  readonly name: string;
  /** Bytes. */
  readonly size: number;
  readonly included: boolean;
}

export interface StoredSection {
  /** Bytes in the file. */
  readonly length: number;
  /** CRC-32C of those bytes. */
  readonly crc32c: number;
}

/** A section holding one zstd frame. */
export interface FrameSection extends StoredSection {
  /** Decompressed bytes; the frame's Frame_Content_Size must say the same. */
  readonly contentSize: number;
}

/** In file order: v86, devices, then disk when the disk is included. */
export interface SnapshotSections {
  readonly v86: FrameSection;
  readonly devices: FrameSection;
  readonly disk?: StoredSection;
}

export interface SnapshotMeta {
  readonly formatVersion: number;
  /** 'boot': the lab's own start state; 'saved': a user's. */
  readonly kind: SnapshotKind;
  readonly name: string;
  /** ISO 8601 (Date.toISOString()). */
  readonly createdAt: string;
  /** The guest image the state belongs to (lowercase hex): restoring into another is refused. */
  readonly imageSha256: string;
  readonly memoryMiB: number;
  readonly ring: RingLayout;
  /** Our virtio functions' names in PCI slot order. */
  readonly functions: readonly string[];
  readonly disk?: SnapshotDiskMeta;
  readonly sections: SnapshotSections;
}

/** The largest v86 state (decompressed) a guest of `memoryMiB` may have. */
export function v86StateLimit(memoryMiB: number): number {
  return memoryMiB * MiB + SNAPSHOT_LIMITS.v86OverRam;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const FUNCTION_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** No control characters (C0, DEL, C1) or lone surrogates in names shown to the user. */
const PRINTABLE = /^[^\p{Cc}\p{Cs}]+$/u;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function corrupt(detail: string): never {
  throw new SnapshotError('corrupt', `this state file is damaged: its header ${detail}`);
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(o: Obj, key: string): Obj {
  const v = o[key];
  return isObject(v) ? v : corrupt(`has no object "${key}"`);
}

function string(o: Obj, key: string, test: (s: string) => boolean): string {
  const v = o[key];
  return typeof v === 'string' && test(v) ? v : corrupt(`has an invalid "${key}"`);
}

function integer(o: Obj, key: string, min: number, max: number): number {
  const v = o[key];
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : corrupt(`has an invalid "${key}"`);
}

function boolean(o: Obj, key: string): boolean {
  const v = o[key];
  return typeof v === 'boolean' ? v : corrupt(`has an invalid "${key}"`);
}

/** A byte count the format bounds: over `limit` is 'too-large', not 'corrupt'. */
function bounded(o: Obj, key: string, limit: number, what: string): number {
  const v = integer(o, key, 0, Number.MAX_SAFE_INTEGER);
  if (v > limit) throw new SnapshotError('too-large', `${what} is ${formatBytes(v)}; a state file may hold at most ${formatBytes(limit)}`);
  return v;
}

function storedSection(o: Obj, key: string, maxLength: number, what: string): StoredSection {
  const s = object(o, key);
  return { length: bounded(s, 'length', maxLength, what), crc32c: integer(s, 'crc32c', 0, 0xffffffff) };
}

function frameSection(o: Obj, key: string, maxContent: number, what: string): FrameSection {
  const s = object(o, key);
  const contentSize = bounded(s, 'contentSize', maxContent, what);
  return { ...storedSection(o, key, zstdCompressBound(maxContent), `${what} (compressed)`), contentSize };
}

const isName = (s: string) => s.length >= 1 && s.length <= SNAPSHOT_LIMITS.name && PRINTABLE.test(s);

/** The meta of a parsed header, every field checked; throws SnapshotError. */
export function parseMeta(json: unknown, formatVersion: number): SnapshotMeta {
  if (!isObject(json)) corrupt('is not a JSON object');
  if (integer(json, 'formatVersion', 0, 0xffffffff) !== formatVersion) corrupt('disagrees with the file on the format version');
  const kind = string(json, 'kind', (s) => s === 'boot' || s === 'saved') as SnapshotKind;
  const name = string(json, 'name', isName);
  const createdAt = string(json, 'createdAt', (s) => ISO_DATE.test(s) && Number.isFinite(Date.parse(s)));
  const imageSha256 = string(json, 'imageSha256', (s) => SHA256_HEX.test(s));
  const memoryMiB = integer(json, 'memoryMiB', 1, SNAPSHOT_LIMITS.memoryMiB);
  const ring = string(json, 'ring', (s) => s === 'split' || s === 'packed') as RingLayout;
  const fns = json.functions;
  if (!Array.isArray(fns) || fns.length > SNAPSHOT_LIMITS.functions || !fns.every((f) => typeof f === 'string' && FUNCTION_NAME.test(f))) {
    corrupt('has an invalid "functions"');
  }
  const functions = fns as string[];
  let disk: SnapshotDiskMeta | undefined;
  if (json.disk !== undefined) {
    const d = object(json, 'disk');
    disk = {
      name: string(d, 'name', (s) => DISK_NAME.test(s) || MEMORY_DISK.test(s)),
      size: bounded(d, 'size', SNAPSHOT_LIMITS.diskSize, 'the disk'),
      included: boolean(d, 'included'),
    };
  }
  const s = object(json, 'sections');
  const sections: SnapshotSections = {
    v86: frameSection(s, 'v86', v86StateLimit(memoryMiB), "v86's state"),
    devices: frameSection(s, 'devices', SNAPSHOT_LIMITS.devicesBytes, 'the device state'),
    ...(s.disk !== undefined ? { disk: storedSection(s, 'disk', SNAPSHOT_LIMITS.diskData, "the disk's data") } : {}),
  };
  if (!!sections.disk !== !!disk?.included) corrupt('disagrees with itself on whether the disk is included');
  return { formatVersion, kind, name, createdAt, imageSha256, memoryMiB, ring, functions, ...(disk ? { disk } : {}), sections };
}
