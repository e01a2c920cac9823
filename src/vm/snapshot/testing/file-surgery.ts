/**
 * Taking a valid state file apart and putting it back together with checksums fixed, so
 * tests and the fuzz campaign can reach the checks behind the CRCs: a field set huge, a
 * section swapped, a frame's declared size changed. Test-only: it trusts its input.
 */
import { crc32c } from '../../../disks/crc32c.ts';
import { PREFIX_BYTES } from '../format.ts';

export type SectionName = 'v86' | 'devices' | 'disk';
export const SECTION_NAMES: readonly SectionName[] = ['v86', 'devices', 'disk'];

export interface OpenFile {
  version: number;
  /** The parsed JSON header; edit freely. */
  header: Record<string, any>;
  sections: Partial<Record<SectionName, Uint8Array>>;
}

/** A valid file's parts (copies: editing them leaves `bytes` alone). */
export function openFile(bytes: Uint8Array): OpenFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(12, true);
  const end = PREFIX_BYTES + headerLength;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, end))) as Record<string, any>;
  const sections: OpenFile['sections'] = {};
  let at = end;
  for (const name of SECTION_NAMES) {
    const s = header.sections[name];
    if (!s) continue;
    sections[name] = bytes.slice(at, at + s.length);
    at += s.length;
  }
  return { version: view.getUint32(8, true), header, sections };
}

/** Set each present section's length and CRC in the header to its bytes' (after editing them). */
export function refreshSections(file: OpenFile): void {
  for (const name of SECTION_NAMES) {
    const bytes = file.sections[name];
    const entry = file.header.sections?.[name];
    if (bytes && entry && typeof entry === 'object') Object.assign(entry, { length: bytes.length, crc32c: crc32c(bytes) });
  }
}

/** The file's bytes: the prefix with the header's length and CRC recomputed, then the sections. */
export function closeFile(file: OpenFile): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify(file.header));
  const parts = [headerBytes, ...SECTION_NAMES.flatMap((n) => (file.sections[n] ? [file.sections[n]] : []))];
  const out = new Uint8Array(PREFIX_BYTES + parts.reduce((n, p) => n + p.length, 0));
  out.set([0x89, 0x56, 0x4c, 0x53, 0x4e, 0x41, 0x50, 0x0a]);
  const view = new DataView(out.buffer);
  view.setUint32(8, file.version, true);
  view.setUint32(12, headerBytes.length, true);
  view.setUint32(16, crc32c(headerBytes), true);
  let at = PREFIX_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Set `value` at a dotted path of the header ("sections.v86.length"), creating objects on the way. */
export function setPath(header: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = header;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k];
  }
  o[keys.at(-1)!] = value;
}

/** Write a little-endian u32 into a copy of `bytes` at `offset` (clamped inside it). */
export function withU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = bytes.slice();
  if (out.length < 4) return out;
  const at = Math.min(offset, out.length - 4);
  new DataView(out.buffer).setUint32(at, value >>> 0, true);
  return out;
}
