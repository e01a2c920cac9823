/**
 * The lab's state file: one running VM in one file that users download and upload, so the
 * decoder treats every byte as hostile: each length is checked against the file and a
 * bound before it is used, every section against its CRC-32C, every zstd frame's declared
 * size before anything is decompressed. Layout (docs/snapshot-format.md):
 *
 *   magic(8) formatVersion(u32) headerLength(u32) headerCrc32c(u32) header(JSON, ≤ 64 KiB)
 *   v86 section (zstd frame of v86's save_state())
 *   devices section (zstd frame of our device state as JSON)
 *   disk section (sparse-disk.ts), when the disk is included
 */
import { crc32c, crc32cRaw } from '../../disks/crc32c.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import {
  FORMAT_VERSION,
  parseMeta,
  SNAPSHOT_LIMITS,
  v86StateLimit,
  type FrameSection,
  type SnapshotKind,
  type SnapshotMeta,
  type SnapshotSections,
  type StoredSection,
} from './meta.ts';
import { formatBytes, SnapshotError } from './snapshot-error.ts';
import { encodeSparseDisk, encodeSparseDiskSync, parseSparseDisk, type DiskSource, type SparseDisk, type SparseEncodeOptions } from './sparse-disk.ts';
import { DEFAULT_ZSTD_LEVEL, type ZstdCodec } from './zstd.ts';
import { inspectZstdFrame, ZstdFrameError } from './zstd-frame.ts';

/** "\x89VLSNAP\n": the high byte catches 7-bit transfers, the newline text-mode conversions. */
export const SNAPSHOT_MAGIC = Uint8Array.of(0x89, 0x56, 0x4c, 0x53, 0x4e, 0x41, 0x50, 0x0a);
/** magic, formatVersion, headerLength, headerCrc32c. */
export const PREFIX_BYTES = 20;

/** What a state is made of, as the VM hands it over. */
export interface SnapshotParts {
  readonly kind: SnapshotKind;
  readonly name: string;
  /** Default: now. */
  readonly createdAt?: Date;
  /** sha256 (hex) of the guest image the VM runs. */
  readonly imageSha256: string;
  readonly memoryMiB: number;
  readonly ring: RingLayout;
  /** Our virtio functions' names in slot order. */
  readonly functions: readonly string[];
  /** v86's save_state(), uncompressed. */
  readonly v86State: Uint8Array;
  /** Our devices' state: anything JSON.stringify takes. */
  readonly deviceState: unknown;
  /** The attached disk; its contents are read from `source` when `include`. */
  readonly disk?: { readonly name: string; readonly source: DiskSource; readonly include: boolean };
}

export interface EncodeOptions {
  /** zstd level for the v86 and device sections (default 3). */
  readonly level?: number;
  readonly disk?: SparseEncodeOptions;
}

const encoder = new TextEncoder();

function section(bytes: Uint8Array): StoredSection {
  return { length: bytes.length, crc32c: crc32c(bytes) };
}

/** One section's length and CRC-32C over consecutive pieces (the running CRC state carries over). */
function sectionOfPieces(pieces: readonly Uint8Array[]): StoredSection {
  let length = 0;
  let crc = 0xffffffff;
  for (const p of pieces) {
    crc = crc32cRaw(crc, p);
    length += p.length;
  }
  return { length, crc32c: ~crc >>> 0 };
}

function headerOf(parts: SnapshotParts, createdAt: string, sections: SnapshotSections) {
  return {
    formatVersion: FORMAT_VERSION,
    kind: parts.kind,
    name: parts.name,
    createdAt,
    imageSha256: parts.imageSha256,
    memoryMiB: parts.memoryMiB,
    ring: parts.ring,
    functions: [...parts.functions],
    ...(parts.disk ? { disk: { name: parts.disk.name, size: parts.disk.source.size, included: parts.disk.include } } : {}),
    sections,
  };
}

/** The header's bytes, checked with the reader's own validation: we never write what we would refuse. */
function headerBytesOf(header: ReturnType<typeof headerOf>): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(header));
  try {
    if (bytes.length > SNAPSHOT_LIMITS.headerBytes) throw new SnapshotError('corrupt', `header of ${bytes.length} bytes`);
    parseMeta(JSON.parse(JSON.stringify(header)), FORMAT_VERSION);
  } catch (e) {
    if (e instanceof SnapshotError && e.kind === 'corrupt') throw new RangeError(`not a valid state: ${e.message}`);
    throw e;
  }
  return bytes;
}

interface Prepared {
  createdAt: string;
  devicesRaw: Uint8Array;
}

/** The checks that need no compression: meta fields and the v86 and device state bounds. */
function prepare(parts: SnapshotParts): Prepared {
  if (parts.v86State.length > v86StateLimit(parts.memoryMiB)) {
    throw new SnapshotError('too-large', `v86's state is ${formatBytes(parts.v86State.length)}, over the ${formatBytes(v86StateLimit(parts.memoryMiB))} a ${parts.memoryMiB} MiB guest may have`);
  }
  const json = JSON.stringify(parts.deviceState);
  if (json === undefined) throw new RangeError('the device state is not JSON');
  const devicesRaw = encoder.encode(json);
  if (devicesRaw.length > SNAPSHOT_LIMITS.devicesBytes) {
    throw new SnapshotError('too-large', `the device state is ${formatBytes(devicesRaw.length)}, over the ${formatBytes(SNAPSHOT_LIMITS.devicesBytes)} a state file may hold`);
  }
  const createdAt = (parts.createdAt ?? new Date()).toISOString();
  const placeholder = { length: 0, crc32c: 0 };
  headerBytesOf(
    headerOf(parts, createdAt, {
      v86: { ...placeholder, contentSize: parts.v86State.length },
      devices: { ...placeholder, contentSize: devicesRaw.length },
      ...(parts.disk?.include ? { disk: placeholder } : {}),
    }),
  );
  return { createdAt, devicesRaw };
}

function assemble(parts: SnapshotParts, zstd: ZstdCodec, opts: EncodeOptions, prepared: Prepared, diskPieces: Uint8Array[] | undefined): Uint8Array[] {
  const level = opts.level ?? DEFAULT_ZSTD_LEVEL;
  const v86 = zstd.compress(parts.v86State, level);
  const devices = zstd.compress(prepared.devicesRaw, level);
  const headerBytes = headerBytesOf(
    headerOf(parts, prepared.createdAt, {
      v86: { ...section(v86), contentSize: parts.v86State.length },
      devices: { ...section(devices), contentSize: prepared.devicesRaw.length },
      ...(diskPieces ? { disk: sectionOfPieces(diskPieces) } : {}),
    }),
  );
  const prefix = new Uint8Array(PREFIX_BYTES);
  prefix.set(SNAPSHOT_MAGIC);
  const view = new DataView(prefix.buffer);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  view.setUint32(16, crc32c(headerBytes), true);
  return [prefix, headerBytes, v86, devices, ...(diskPieces ?? [])];
}

/**
 * The state file as consecutive pieces (header, then each section's), for `new Blob(pieces)`
 * or a stream without one more copy of the whole. Throws SnapshotError('too-large') when a
 * part is over the format's bounds, RangeError when `parts` is not a valid state.
 */
export async function encodeSnapshotPieces(parts: SnapshotParts, zstd: ZstdCodec, opts: EncodeOptions = {}): Promise<Uint8Array[]> {
  const prepared = prepare(parts);
  const disk = parts.disk?.include ? await encodeSparseDisk(parts.disk.source, zstd, opts.disk) : undefined;
  return assemble(parts, zstd, opts, prepared, disk);
}

/** encodeSnapshotPieces when the disk (if included) reads synchronously (a BlockBackend). */
export function encodeSnapshotPiecesSync(parts: SnapshotParts, zstd: ZstdCodec, opts: EncodeOptions = {}): Uint8Array[] {
  const prepared = prepare(parts);
  const disk = parts.disk?.include ? encodeSparseDiskSync(parts.disk.source, zstd, opts.disk) : undefined;
  return assemble(parts, zstd, opts, prepared, disk);
}

export function concatPieces(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The state file in one buffer (see encodeSnapshotPieces). */
export async function encodeSnapshot(parts: SnapshotParts, zstd: ZstdCodec, opts: EncodeOptions = {}): Promise<Uint8Array> {
  return concatPieces(await encodeSnapshotPieces(parts, zstd, opts));
}

/** encodeSnapshot when the disk (if included) reads synchronously. */
export function encodeSnapshotSync(parts: SnapshotParts, zstd: ZstdCodec, opts: EncodeOptions = {}): Uint8Array {
  return concatPieces(encodeSnapshotPiecesSync(parts, zstd, opts));
}

function truncated(have: number, need: number): never {
  throw new SnapshotError(
    'truncated',
    `this state file is incomplete: it has ${formatBytes(have)} of the ${formatBytes(need)} it should have (the download or copy was cut short)`,
  );
}

function damaged(detail: string): never {
  throw new SnapshotError('corrupt', `this state file is damaged: ${detail}`);
}

interface Header {
  meta: SnapshotMeta;
  /** Where the first section starts. */
  end: number;
}

/** Magic, version and header: needs only the file's first PREFIX_BYTES + headerLength bytes. */
function readHeader(bytes: Uint8Array): Header {
  const magicBytes = bytes.subarray(0, SNAPSHOT_MAGIC.length);
  if (!magicBytes.every((b, i) => b === SNAPSHOT_MAGIC[i])) throw new SnapshotError('not-a-snapshot', 'this is not a virtio-lab state file');
  if (bytes.length < PREFIX_BYTES) truncated(bytes.length, PREFIX_BYTES);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version > FORMAT_VERSION) {
    throw new SnapshotError('version', `this state was saved by a newer virtio-lab (format ${version}); this one reads format ${FORMAT_VERSION}`);
  }
  if (version !== FORMAT_VERSION) damaged(`it claims format version ${version}`);
  const headerLength = view.getUint32(12, true);
  if (headerLength === 0 || headerLength > SNAPSHOT_LIMITS.headerBytes) damaged(`its header claims ${headerLength} bytes (at most ${SNAPSHOT_LIMITS.headerBytes})`);
  const end = PREFIX_BYTES + headerLength;
  if (bytes.length < end) truncated(bytes.length, end);
  const headerBytes = bytes.subarray(PREFIX_BYTES, end);
  if (crc32c(headerBytes) !== view.getUint32(16, true)) damaged('its header fails its checksum');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    damaged('its header is not JSON');
  }
  return { meta: parseMeta(json, version), end };
}

/**
 * The meta of a state file (for a list of states) from its first bytes: PREFIX_BYTES +
 * headerLength suffice (≤ 64 KiB + 20). Throws SnapshotError.
 */
export function readSnapshotMeta(bytes: Uint8Array): SnapshotMeta {
  return readHeader(bytes).meta;
}

export interface SnapshotExpectation {
  /** The guest image this lab runs: a state from another is refused ('foreign-image'). */
  readonly imageSha256: string;
  /** The largest file accepted ('too-large'). */
  readonly maxBytes: number;
}

export interface DecodedSnapshot {
  readonly meta: SnapshotMeta;
  /** v86's state as the zstd frame it was stored in, a view into the file: restore_state(v86State.slice().buffer) takes it. */
  readonly v86State: Uint8Array;
  readonly deviceState: unknown;
  /** The included disk, checked but not decompressed: restoreSparseDisk() writes it out. */
  readonly disk?: SparseDisk;
}

const short = (sha: string) => `${sha.slice(0, 4)}…`;

/** The section's content as a zstd frame, checked against the header (nothing decompressed). */
function checkFrame(bytes: Uint8Array, s: FrameSection, limit: number, what: string): void {
  try {
    const { contentSize } = inspectZstdFrame(bytes, limit);
    if (contentSize !== s.contentSize) damaged(`${what} holds ${contentSize} bytes, its header says ${s.contentSize}`);
  } catch (e) {
    if (e instanceof ZstdFrameError) damaged(`${what} is not a valid zstd frame (${e.message})`);
    throw e;
  }
}

/**
 * A whole state file, checked through: structure, bounds, checksums, the guest image it
 * belongs to; the device state decompressed (≤ 1 MiB) and parsed. Nothing is allocated in
 * proportion to what the file claims, only to what it holds and the bounds. Throws
 * SnapshotError only.
 */
export function decodeSnapshot(bytes: Uint8Array, expect: SnapshotExpectation, zstd: ZstdCodec): DecodedSnapshot {
  if (bytes.length > expect.maxBytes) {
    throw new SnapshotError('too-large', `this file is ${formatBytes(bytes.length)}; the lab takes state files of at most ${formatBytes(expect.maxBytes)}`);
  }
  const { meta, end } = readHeader(bytes);
  if (meta.imageSha256 !== expect.imageSha256.toLowerCase()) {
    throw new SnapshotError(
      'foreign-image',
      `this state was saved from another guest image (sha256 ${short(meta.imageSha256)}); it cannot run on this one (sha256 ${short(expect.imageSha256.toLowerCase())})`,
    );
  }
  const { v86, devices, disk } = meta.sections;
  const total = end + v86.length + devices.length + (disk?.length ?? 0);
  if (bytes.length < total) truncated(bytes.length, total);
  if (bytes.length > total) damaged(`${bytes.length - total} bytes follow its last section`);

  const v86Bytes = bytes.subarray(end, end + v86.length);
  const devicesBytes = bytes.subarray(end + v86.length, end + v86.length + devices.length);
  const diskBytes = disk ? bytes.subarray(total - disk.length, total) : undefined;
  if (crc32c(v86Bytes) !== v86.crc32c) damaged("v86's state fails its checksum");
  if (crc32c(devicesBytes) !== devices.crc32c) damaged('the device state fails its checksum');
  if (diskBytes && crc32c(diskBytes) !== disk!.crc32c) damaged("the disk's data fails its checksum");

  checkFrame(v86Bytes, v86, v86StateLimit(meta.memoryMiB), "v86's state");
  checkFrame(devicesBytes, devices, SNAPSHOT_LIMITS.devicesBytes, 'the device state');
  let deviceState: unknown;
  try {
    const raw = zstd.decompress(devicesBytes, devices.contentSize);
    deviceState = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (e) {
    // Anything, including a RangeError from JSON nested too deep for the stack.
    damaged(`the device state does not decode (${e instanceof Error ? e.message : String(e)})`);
  }
  const sparse = diskBytes ? parseSparseDisk(diskBytes, meta.disk!.size) : undefined;
  return { meta, v86State: v86Bytes, deviceState, ...(sparse ? { disk: sparse } : {}) };
}
