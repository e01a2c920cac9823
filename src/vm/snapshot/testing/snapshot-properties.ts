/**
 * The state-file parser's fuzz campaign (`npm run fuzz -- --only snapshot`), shared with the
 * unit tests (fast-check):
 *  - round trip: random meta, v86-state-like bytes, device JSON and sparse disks (any size)
 *    encode, decode and restore to exactly what went in;
 *  - truncation: a valid file cut anywhere is 'truncated' or 'corrupt';
 *  - bit flips: 1–8 flipped bits are always refused (CRC-32C catches them);
 *  - mutations behind the checksums (a header field set to anything, a prefix field, a
 *    section's bytes or u32 fields, sections swapped or resized, all with the CRCs fixed):
 *    a SnapshotError or a consistent decode;
 *  - huge claims: a length, size or count set to 2^31…2^53 (checksums fixed) is refused.
 * Every case runs decode (and, when it decodes, the disk restore) under a work meter: no
 * exception but SnapshotError, no decompression over the format's bounds (≤ 4 MiB at a
 * time, in total no more than the header declares), and time under WORK_MS_BOUND; the
 * worst case per metric goes to the campaign's report.
 */
import fc from 'fast-check';
import { decodeSnapshot, encodeSnapshotSync, PREFIX_BYTES, readSnapshotMeta, type DecodedSnapshot } from '../format.ts';
import { SNAPSHOT_LIMITS } from '../meta.ts';
import { SnapshotError } from '../snapshot-error.ts';
import { restoreSparseDiskSync, SPARSE_LIMITS, type DiskSink } from '../sparse-disk.ts';
import { zstdWork, type ZstdCodec } from '../zstd.ts';
import { loadZstd } from '../zstd-node.ts';
import { fail, type NamedProperty } from '../../../virtio/testing/invariants.ts';
import { assertWithinBudget, worstCases, WORK_MS_BOUND, type Work } from '../../../virtio/testing/work-meter.ts';
import { closeFile, openFile, refreshSections, type OpenFile, SECTION_NAMES, setPath, withU32, type SectionName } from './file-surgery.ts';
import { encodeOptionsOf, snapshotCaseArb, type SnapshotCase } from './snapshot-arbitraries.ts';

const MiB = 1024 * 1024;
/** Files the mutation properties start from: small disks keep a case in milliseconds. */
const MUTATED_DISK_BYTES = 256 * 1024;

/** A sink that checks the restore writes every byte once, in order, and keeps nothing. */
export class CoverageSink implements DiskSink {
  covered = 0;
  writes = 0;
  constructor(
    readonly size: number,
    private readonly expected?: Uint8Array,
  ) {}
  write(offset: number, src: Uint8Array): void {
    if (offset !== this.covered) fail(`restore wrote at ${offset}, expected ${this.covered} (out of order or overlapping)`);
    if (src.length === 0 || src.length > SPARSE_LIMITS.maxChunk) fail(`restore wrote ${src.length} bytes at once`);
    if (offset + src.length > this.size) fail(`restore wrote past the disk's ${this.size} bytes`);
    if (this.expected) {
      const want = this.expected.subarray(offset, offset + src.length);
      for (let i = 0; i < src.length; i++) if (src[i] !== want[i]) fail(`restored byte ${offset + i} is ${src[i]}, saved ${want[i]}`);
    }
    this.covered += src.length;
    this.writes++;
  }
}

/** The file a case encodes to. */
function encodeCase(c: SnapshotCase, zstd: ZstdCodec): Uint8Array {
  return encodeSnapshotSync(c.parts, zstd, encodeOptionsOf(c));
}

function expectOf(c: SnapshotCase, maxBytes = 64 * MiB) {
  return { imageSha256: c.parts.imageSha256, maxBytes };
}

/** `part` must be a view inside `whole`. */
function within(whole: Uint8Array, part: Uint8Array, what: string): void {
  if (part.buffer !== whole.buffer || part.byteOffset < whole.byteOffset || part.byteOffset + part.length > whole.byteOffset + whole.length) {
    fail(`${what} is not a view inside the file`);
  }
}

export interface Outcome {
  /** 'decoded' or the SnapshotError's kind. */
  result: string;
  decoded?: DecodedSnapshot;
  work: Work;
}

/**
 * Decode `bytes` (and restore its disk, if it decodes with one) the way the lab would, held
 * to the parser's rules; fails the case on any other exception or work over the bounds.
 */
export function decodeMeasured(bytes: Uint8Array, expect: { imageSha256: string; maxBytes: number }, zstd: ZstdCodec, where: string): Outcome {
  const before = zstdWork.decompressed;
  zstdWork.largest = 0;
  const t0 = performance.now();
  let result: string;
  let decoded: DecodedSnapshot | undefined;
  try {
    decoded = decodeSnapshot(bytes, expect, zstd);
    within(bytes, decoded.v86State, "v86's state");
    if (decoded.disk) {
      within(bytes, decoded.disk.section, 'the disk section');
      const sink = new CoverageSink(decoded.disk.size);
      restoreSparseDiskSync(decoded.disk, sink, zstd);
      if (sink.covered !== decoded.disk.size) fail(`restore wrote ${sink.covered} of ${decoded.disk.size} bytes`);
    }
    result = 'decoded';
  } catch (e) {
    if (!(e instanceof SnapshotError)) fail(`the parser threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
    result = e.kind;
  }
  const work: Work = {
    accesses: 0,
    bytes: zstdWork.decompressed - before,
    ms: performance.now() - t0,
    extra: { largestDecompression: zstdWork.largest },
  };
  // Nothing decompressed beyond what the header declares (device state, then the disk's blocks).
  const declared = SNAPSHOT_LIMITS.devicesBytes + (decoded?.disk?.size ?? 0);
  const budgets = { bytes: declared, largestDecompression: SPARSE_LIMITS.maxChunk, ms: WORK_MS_BOUND };
  worstCases.note('snapshot: bytes decompressed per file', work.bytes, where, budgets.bytes);
  worstCases.note('snapshot: largest decompression', zstdWork.largest, where, budgets.largestDecompression);
  worstCases.note('snapshot: ms per file', work.ms, where, budgets.ms);
  assertWithinBudget(`snapshot (${where})`, work, budgets);
  return { result, decoded, work };
}

function jsonRoundTrip(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function roundTripProperty(zstd: ZstdCodec): fc.IProperty<[SnapshotCase]> {
  return fc.property(snapshotCaseArb(2 * MiB, false), (c) => {
    const bytes = encodeCase(c, zstd);
    const { result, decoded } = decodeMeasured(bytes, expectOf(c), zstd, 'round trip');
    if (result !== 'decoded' || !decoded) return fail(`a valid file was refused: ${result}`);
    const { meta } = decoded;
    const p = c.parts;
    if (meta.kind !== p.kind || meta.name !== p.name || meta.imageSha256 !== p.imageSha256 || meta.memoryMiB !== p.memoryMiB || meta.ring !== p.ring) fail('meta differs');
    if (meta.createdAt !== p.createdAt!.toISOString()) fail(`createdAt ${meta.createdAt} ≠ ${p.createdAt!.toISOString()}`);
    if (meta.functions.join() !== p.functions.join()) fail('functions differ');
    if (!!meta.disk !== !!p.disk || (p.disk && (meta.disk!.name !== p.disk.name || meta.disk!.size !== p.disk.source.size || meta.disk!.included !== p.disk.include))) fail('disk meta differs');
    if (!sameJson(decoded.deviceState, jsonRoundTrip(p.deviceState))) fail('device state differs');
    const v86 = zstd.decompress(decoded.v86State, meta.sections.v86.contentSize);
    if (v86.length !== p.v86State.length || v86.some((b, i) => b !== p.v86State[i])) fail("v86's state differs");
    if (!!decoded.disk !== !!p.disk?.include) fail('disk section presence differs');
    if (decoded.disk) {
      const sink = new CoverageSink(c.disk!.bytes.length, c.disk!.bytes);
      restoreSparseDiskSync(decoded.disk, sink, zstd);
      if (sink.covered !== c.disk!.bytes.length) fail('restore did not cover the disk');
    }
    // The header alone gives the same meta (a states list reads only that much).
    const headerEnd = PREFIX_BYTES + new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    if (!sameJson(readSnapshotMeta(bytes.subarray(0, headerEnd)), meta)) fail('readSnapshotMeta differs from decodeSnapshot');
  });
}

/** Small valid files to mutate (one encode per case). */
const smallCaseArb = () => snapshotCaseArb(MUTATED_DISK_BYTES, false);

export function truncationProperty(zstd: ZstdCodec): fc.IProperty<[SnapshotCase, number]> {
  return fc.property(smallCaseArb(), fc.nat(), (c, cut) => {
    const bytes = encodeCase(c, zstd);
    const at = cut % bytes.length;
    const { result } = decodeMeasured(bytes.subarray(0, at), expectOf(c), zstd, 'truncated');
    if (result !== 'truncated' && result !== 'corrupt') fail(`a file cut at ${at} of ${bytes.length} gave "${result}"`);
    try {
      readSnapshotMeta(bytes.subarray(0, at));
    } catch (e) {
      if (!(e instanceof SnapshotError) || (e.kind !== 'truncated' && e.kind !== 'corrupt')) fail(`readSnapshotMeta on a cut file threw ${String(e)}`);
    }
  });
}

export function bitFlipProperty(zstd: ZstdCodec): fc.IProperty<[SnapshotCase, number[]]> {
  return fc.property(smallCaseArb(), fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 8 }), (c, picks) => {
    const bytes = encodeCase(c, zstd).slice();
    const bits = new Set(picks.map((p) => p % (bytes.length * 8)));
    for (const bit of bits) bytes[bit >> 3] ^= 1 << (bit & 7);
    const expect = expectOf(c);
    const { result } = decodeMeasured(bytes, expect, zstd, 'bit flips');
    if (result === 'decoded') fail(`${bits.size} flipped bits went unnoticed`);
    // Flips behind an intact header: the section's CRC-32C is what notices them.
    const headerEnd = PREFIX_BYTES + new DataView(bytes.buffer).getUint32(12, true);
    if ([...bits].every((bit) => bit >> 3 >= headerEnd)) {
      try {
        decodeSnapshot(bytes, expect, zstd);
      } catch (e) {
        if (!(e instanceof SnapshotError) || !e.message.includes('fails its checksum')) fail(`flips in a section were caught by "${(e as Error).message}", not its checksum`);
      }
    }
  });
}

const HUGE = [2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1];
const hugeArb = fc.oneof(fc.constantFrom(...HUGE), fc.integer({ min: 2 ** 31, max: 2 ** 32 - 1 }));
/** Huge values for u32 fields (2^32 and up would wrap). */
const hugeU32 = (v: number) => Math.min(v, 2 ** 32 - 1);
const anyJsonArb = fc.oneof(
  fc.constantFrom(...HUGE, 2 ** 53 + 2, -1, 0, 1, 1.5, 1e308, null, true, '', 'split'),
  fc.integer(),
  fc.string({ maxLength: 80 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const HEADER_PATHS = [
  'formatVersion',
  'kind',
  'name',
  'createdAt',
  'imageSha256',
  'memoryMiB',
  'ring',
  'functions',
  'disk',
  'disk.name',
  'disk.size',
  'disk.included',
  'sections',
  'sections.v86',
  'sections.v86.length',
  'sections.v86.contentSize',
  'sections.v86.crc32c',
  'sections.devices.length',
  'sections.devices.contentSize',
  'sections.disk',
  'sections.disk.length',
] as const;
const sectionArb = fc.constantFrom<SectionName>(...SECTION_NAMES);

type Mutation =
  | { kind: 'header'; path: string; value: unknown }
  | { kind: 'prefix'; offset: number; value: number }
  | { kind: 'section-u32'; section: SectionName; at: number; value: number }
  | { kind: 'section-bytes'; section: SectionName; at: number; bytes: Uint8Array }
  | { kind: 'section-resize'; section: SectionName; length: number }
  | { kind: 'swap'; a: SectionName; b: SectionName; entries: boolean };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('header' as const), path: fc.constantFrom(...HEADER_PATHS), value: anyJsonArb }),
  fc.record({ kind: fc.constant('prefix' as const), offset: fc.constantFrom(8, 12, 16), value: fc.oneof(hugeArb, fc.nat(70_000)) }),
  fc.record({ kind: fc.constant('section-u32' as const), section: sectionArb, at: fc.oneof(fc.nat(64), fc.nat()), value: fc.oneof(hugeArb, fc.nat(), fc.nat(300)) }),
  fc.record({ kind: fc.constant('section-bytes' as const), section: sectionArb, at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('section-resize' as const), section: sectionArb, length: fc.nat(4096) }),
  fc.record({ kind: fc.constant('swap' as const), a: sectionArb, b: sectionArb, entries: fc.boolean() }),
);

/** `bytes` with `m` applied and every checksum (and length) made to match again. */
export function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  if (m.kind === 'prefix') return withU32(bytes, m.offset, m.value);
  let file: OpenFile;
  try {
    file = openFile(bytes);
  } catch {
    return bytes; // an earlier mutation left no header to edit
  }
  const s = file.sections;
  switch (m.kind) {
    case 'header':
      setPath(file.header, m.path, m.value);
      return closeFile(file);
    case 'section-u32':
      if (s[m.section]) s[m.section] = withU32(s[m.section]!, m.at % Math.max(1, s[m.section]!.length), m.value);
      break;
    case 'section-bytes': {
      const sec = s[m.section];
      if (sec && sec.length > 0) {
        const copy = sec.slice();
        copy.set(m.bytes.subarray(0, copy.length), Math.min(m.at % copy.length, copy.length - Math.min(m.bytes.length, copy.length)));
        s[m.section] = copy;
      }
      break;
    }
    case 'section-resize': {
      const sec = s[m.section];
      if (sec) {
        const copy = new Uint8Array(m.length);
        copy.set(sec.subarray(0, m.length));
        s[m.section] = copy;
      }
      break;
    }
    case 'swap': {
      [s[m.a], s[m.b]] = [s[m.b], s[m.a]];
      const e = file.header.sections;
      if (m.entries && typeof e === 'object' && e !== null) {
        [e[m.a], e[m.b]] = [e[m.b], e[m.a]];
        for (const n of [m.a, m.b]) if (e[n] === undefined) delete e[n];
      }
      break;
    }
  }
  refreshSections(file);
  return closeFile(file);
}

export function mutationProperty(zstd: ZstdCodec, coverage: Map<string, number>): fc.IProperty<[SnapshotCase, Mutation[]]> {
  return fc.property(smallCaseArb(), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (c, mutations) => {
    let bytes = encodeCase(c, zstd);
    for (const m of mutations) bytes = mutate(bytes, m);
    const { result, decoded } = decodeMeasured(bytes, expectOf(c), zstd, `mutated: ${mutations.map((m) => m.kind).join(', ')}`);
    const key = `${mutations.map((m) => (m.kind === 'header' ? `header ${m.path}` : m.kind)).join(' + ')} → ${result}`;
    coverage.set(key, (coverage.get(key) ?? 0) + 1);
    if (decoded) {
      // What decodes must still be within the format: a checked header, frames within bounds.
      readSnapshotMeta(bytes);
      if (decoded.meta.sections.devices.contentSize > SNAPSHOT_LIMITS.devicesBytes) fail('device state over its bound decoded');
    }
  });
}

/** Where a huge value goes: a length, size or count the parser must check before use. */
type HugeTarget =
  | { kind: 'header'; path: (typeof HEADER_PATHS)[number] }
  | { kind: 'prefix'; offset: 12 }
  /** One of the index's six u32 fields (byte offset 0–20), or a chunk-table entry. */
  | { kind: 'disk-index'; offset: number }
  | { kind: 'chunk-length'; n: number }
  | { kind: 'frame-size'; section: 'v86' | 'devices' };

const hugeTargetArb: fc.Arbitrary<HugeTarget> = fc.oneof(
  fc.constantFrom(
    ...(['sections.v86.length', 'sections.v86.contentSize', 'sections.devices.length', 'sections.devices.contentSize', 'sections.disk.length', 'disk.size', 'memoryMiB'] as const).map((path) => ({ kind: 'header' as const, path })),
  ),
  fc.constant({ kind: 'prefix' as const, offset: 12 as const }),
  // blockSize, blocksPerChunk, disk size (low, high), storedBlocks, chunkCount.
  fc.constantFrom(0, 4, 8, 12, 16, 20).map((offset) => ({ kind: 'disk-index' as const, offset })),
  fc.nat(64).map((n) => ({ kind: 'chunk-length' as const, n })),
  fc.constantFrom('v86' as const, 'devices' as const).map((section) => ({ kind: 'frame-size' as const, section })),
);

/** A zstd frame whose header declares `size` (8-byte Frame_Content_Size), its blocks unchanged. */
export function withFrameContentSize(frame: Uint8Array, size: number): Uint8Array {
  const fhd = frame[4];
  const single = (fhd & 0x20) !== 0;
  const fcsFlag = fhd >> 6;
  const fcsBytes = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag];
  const blocksAt = 5 + (single ? 0 : 1) + fcsBytes;
  const out = new Uint8Array(frame.length - blocksAt + 5 + (single ? 0 : 1) + 8);
  out.set(frame.subarray(0, 5 + (single ? 0 : 1)));
  out[4] = (fhd & 0x3f) | 0xc0;
  const view = new DataView(out.buffer);
  const fcsAt = 5 + (single ? 0 : 1);
  view.setUint32(fcsAt, size % 2 ** 32, true);
  view.setUint32(fcsAt + 4, Math.floor(size / 2 ** 32), true);
  out.set(frame.subarray(blocksAt), fcsAt + 8);
  return out;
}

export function hugeClaimProperty(zstd: ZstdCodec, coverage: Map<string, number>): fc.IProperty<[SnapshotCase, HugeTarget, number]> {
  return fc.property(smallCaseArb(), hugeTargetArb, hugeArb, (c, target, value) => {
    const valid = encodeCase(c, zstd);
    let bytes: Uint8Array;
    if (target.kind === 'prefix') bytes = withU32(valid, target.offset, hugeU32(value));
    else {
      const file = openFile(valid);
      if (target.kind === 'header') {
        // A disk not included may have any size up to the bound; an included one must match its section.
        if (target.path.startsWith('disk.') && !file.header.disk?.included) return;
        if (target.path.startsWith('sections.disk') && !file.header.sections.disk) return;
        setPath(file.header, target.path, value);
      } else if (target.kind === 'disk-index' || target.kind === 'chunk-length') {
        const disk = file.sections.disk;
        if (!disk) return;
        const view = new DataView(disk.buffer, disk.byteOffset, disk.byteLength);
        const chunks = view.getUint32(20, true);
        if (target.kind === 'chunk-length' && chunks === 0) return;
        const table = 24 + Math.ceil(Math.ceil(view.getUint32(8, true) / view.getUint32(0, true)) / 8);
        file.sections.disk = withU32(disk, target.kind === 'disk-index' ? target.offset : table + 4 * (target.n % chunks), hugeU32(value));
        refreshSections(file);
      } else {
        file.sections[target.section] = withFrameContentSize(file.sections[target.section]!, value);
        refreshSections(file);
      }
      bytes = closeFile(file);
    }
    const { result } = decodeMeasured(bytes, expectOf(c), zstd, `huge ${target.kind}`);
    const what =
      target.kind === 'header' ? target.path
      : target.kind === 'disk-index' ? `disk index +${target.offset}`
      : target.kind === 'chunk-length' ? 'a chunk length'
      : target.kind === 'prefix' ? 'headerLength'
      : `${target.section} frame size`;
    coverage.set(`${what} → ${result}`, (coverage.get(`${what} → ${result}`) ?? 0) + 1);
    // Every target is a length, size or count no valid file of this size has.
    if (result === 'decoded') fail(`a ${value} in ${what} was accepted`);
  });
}

/** The campaign: every property, with the codec loaded (Node). */
export async function snapshotProperties(): Promise<NamedProperty[]> {
  const zstd = await loadZstd();
  const mutations = new Map<string, number>();
  const huge = new Map<string, number>();
  return [
    { name: 'snapshot: round trip (meta, v86 state, device JSON, sparse disk)', property: roundTripProperty(zstd) },
    { name: 'snapshot: truncated anywhere → truncated or corrupt', property: truncationProperty(zstd) },
    { name: 'snapshot: bit flips → refused', property: bitFlipProperty(zstd) },
    { name: 'snapshot: mutations behind the checksums → SnapshotError or a consistent decode', property: mutationProperty(zstd, mutations), coverage: mutations },
    { name: 'snapshot: huge lengths and sizes → refused within bounds', property: hugeClaimProperty(zstd, huge), coverage: huge },
  ];
}
