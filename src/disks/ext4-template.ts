/**
 * Host-side ext4 templates: a new lab disk is created already formatted, so the guest never
 * runs mkfs.ext4 at boot. guest/build.sh formats zero-filled images of a few sizes with the
 * guest's own mke2fs and stores only their non-zero 1 KiB blocks in the manifest
 * ("diskTemplates"); the disk store writes them into a zero-filled file of the same size and
 * gives the filesystem its own UUID and directory hash seed.
 *
 * A template is data from the server: it is validated and bounded before a byte is written,
 * and anything wrong makes the disk blank (the guest formats a blank disk itself).
 */
import { crc32cRaw } from './crc32c.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Bounds on what a template may ask for (the real ones: ≤ 600 runs, ≤ 600 KiB of blocks). */
const MAX_RUNS = 65_536;
const MAX_TEMPLATE_BYTES = 16 * MiB;

export interface DiskTemplate {
  sizeMiB: number;
  /** The UUID mke2fs was given: found and replaced in every superblock copy and the journal's. */
  uuid: string;
  /** Non-zero extents in 1 KiB blocks, ascending and disjoint. */
  runs: { first: number; count: number }[];
  sha256: string;
  /** The runs' bytes, concatenated, raw-deflated, base64. */
  deflateRaw: string;
}

/** One extent to write into the zero-filled image. */
export interface TemplateExtent {
  offset: number;
  bytes: Uint8Array;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function uuidBytes(uuid: string): Uint8Array {
  if (!UUID_RE.test(uuid)) throw new TemplateError(`not a UUID: ${uuid}`);
  const hex = uuid.replace(/-/g, '');
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

function parseRuns(text: string, sizeMiB: number): DiskTemplate['runs'] {
  const blocks = (sizeMiB * MiB) / KiB;
  const parts = text.split(' ');
  if (parts.length > MAX_RUNS) throw new TemplateError(`${parts.length} runs (at most ${MAX_RUNS})`);
  const runs: DiskTemplate['runs'] = [];
  let end = 0;
  let total = 0;
  for (const part of parts) {
    const m = /^(\d{1,10})\+(\d{1,10})$/.exec(part);
    if (!m) throw new TemplateError(`bad run "${part.slice(0, 24)}"`);
    const first = Number(m[1]);
    const count = Number(m[2]);
    if (count === 0 || first < end || first + count > blocks) throw new TemplateError(`run ${part} is out of order or outside the disk`);
    total += count * KiB;
    if (total > MAX_TEMPLATE_BYTES) throw new TemplateError(`more than ${MAX_TEMPLATE_BYTES} bytes of blocks`);
    runs.push({ first, count });
    end = first + count;
  }
  return runs;
}

/** The manifest's "diskTemplates", checked; a malformed list throws TemplateError. */
export function parseDiskTemplates(json: unknown): DiskTemplate[] {
  if (json === undefined) return [];
  if (!Array.isArray(json) || json.length > 64) throw new TemplateError('diskTemplates is not a short list');
  return json.map((t: unknown) => {
    const o = t as Record<string, unknown> | null;
    if (
      !o ||
      !Number.isInteger(o.sizeMiB) ||
      (o.sizeMiB as number) < 1 ||
      (o.sizeMiB as number) > 1024 * 1024 ||
      typeof o.uuid !== 'string' ||
      !UUID_RE.test(o.uuid) ||
      typeof o.runs !== 'string' ||
      typeof o.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(o.sha256) ||
      typeof o.deflateRaw !== 'string' ||
      o.deflateRaw.length > 4 * MAX_TEMPLATE_BYTES
    ) {
      throw new TemplateError('a disk template is malformed');
    }
    const sizeMiB = o.sizeMiB as number;
    return { sizeMiB, uuid: o.uuid, runs: parseRuns(o.runs, sizeMiB), sha256: o.sha256, deflateRaw: o.deflateRaw };
  });
}

/** The template for exactly this capacity, if there is one. */
export function templateFor(templates: DiskTemplate[], sizeBytes: number): DiskTemplate | undefined {
  return templates.find((t) => t.sizeMiB * MiB === sizeBytes);
}

function base64Bytes(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    throw new TemplateError('deflateRaw is not base64');
  }
}

/** Inflates at most `limit` bytes: a template cannot make the page allocate more than it declares. */
async function inflateRaw(bytes: Uint8Array, limit: number): Promise<Uint8Array> {
  const out = new Uint8Array(limit);
  let at = 0;
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > limit) throw new TemplateError('the template inflates to more bytes than its runs hold');
      out.set(value, at);
      at += value.length;
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e instanceof TemplateError ? e : new TemplateError(`the template does not inflate (${(e as Error).message})`);
  }
  if (at !== limit) throw new TemplateError(`the template inflates to ${at} bytes, its runs hold ${limit}`);
  return out;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// ext4 superblock fields (offsets within the 1024-byte superblock).
const SB_MAGIC = 0x38;
const SB_FEATURE_INCOMPAT = 0x60;
const SB_UUID = 0x68;
const SB_HASH_SEED = 0xec;
const SB_CHECKSUM = 0x3fc;
const EXT4_MAGIC = 0xef53;
const INCOMPAT_CSUM_SEED = 0x2000;
// jbd2 journal superblock: big-endian magic, then s_uuid at 0x30.
const JBD2_MAGIC = 0xc03b3998;
const JBD2_UUID = 0x30;

function sameBytes(a: Uint8Array, at: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

/**
 * Gives the template's filesystem its own identity: every superblock copy (primary and
 * backups) gets `uuid` and `hashSeed` and its checksum recomputed, and the journal's
 * superblock gets `uuid`. Valid only with metadata_csum_seed (INCOMPAT_CSUM_SEED): the other
 * metadata checksums are seeded from s_checksum_seed, which stays. Returns how many superblock
 * copies it changed (0: not an ext4 template of ours).
 */
export function personalize(extents: TemplateExtent[], templateUuid: Uint8Array, uuid: Uint8Array, hashSeed: Uint8Array): number {
  let superblocks = 0;
  for (const { bytes } of extents) {
    // Superblock copies sit at 1 KiB boundaries (the image's block size is ≥ 1 KiB and the
    // extents start on 1 KiB blocks).
    for (let at = 0; at + KiB <= bytes.length; at += KiB) {
      const view = new DataView(bytes.buffer, bytes.byteOffset + at, KiB);
      if (view.getUint16(SB_MAGIC, true) === EXT4_MAGIC && sameBytes(bytes, at + SB_UUID, templateUuid)) {
        if (!(view.getUint32(SB_FEATURE_INCOMPAT, true) & INCOMPAT_CSUM_SEED)) {
          throw new TemplateError('the template lacks metadata_csum_seed: its UUID cannot change');
        }
        bytes.set(uuid, at + SB_UUID);
        bytes.set(hashSeed, at + SB_HASH_SEED);
        view.setUint32(SB_CHECKSUM, crc32cRaw(0xffffffff, bytes.subarray(at, at + SB_CHECKSUM)), true);
        superblocks++;
      } else if (view.getUint32(0, false) === JBD2_MAGIC && sameBytes(bytes, at + JBD2_UUID, templateUuid)) {
        bytes.set(uuid, at + JBD2_UUID);
      }
    }
  }
  return superblocks;
}

export interface Identity {
  uuid: Uint8Array;
  hashSeed: Uint8Array;
}

function randomIdentity(): Identity {
  return { uuid: uuidBytes(crypto.randomUUID()), hashSeed: uuidBytes(crypto.randomUUID()) };
}

/**
 * The extents to write into a zero-filled image of `template.sizeMiB` MiB, checked against
 * the template's sha256, with a fresh (or the given) UUID and hash seed.
 */
export async function templateExtents(template: DiskTemplate, identity: Identity = randomIdentity()): Promise<TemplateExtent[]> {
  const total = template.runs.reduce((n, r) => n + r.count * KiB, 0);
  const data = await inflateRaw(base64Bytes(template.deflateRaw), total);
  if ((await sha256Hex(data)) !== template.sha256) throw new TemplateError('the template fails its sha256');
  const extents: TemplateExtent[] = [];
  let at = 0;
  for (const r of template.runs) {
    extents.push({ offset: r.first * KiB, bytes: data.subarray(at, at + r.count * KiB) });
    at += r.count * KiB;
  }
  if (personalize(extents, uuidBytes(template.uuid), identity.uuid, identity.hashSeed) === 0) {
    throw new TemplateError('the template holds no ext4 superblock');
  }
  return extents;
}
