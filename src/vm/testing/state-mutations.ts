/**
 * Mutations of a lab's saved device state (LabDevicesState, plain JSON) for the
 * device-state fuzz campaign: blind ones on the JSON tree (numbers to boundary values,
 * nudges, type swaps, dropped and added keys, arrays duplicated or cut, strings and base64
 * fields replaced, deep nesting, giant strings and arrays, subtrees moved elsewhere) and a
 * few that know the format, so cases get past the consistency checks: more chains in
 * flight with the indices moved to match, and the restored guest RAM itself rewritten
 * under a queue's descriptor table (a state file carries the RAM too).
 *
 * A mutation names its target by a number taken modulo the eligible nodes of the state it
 * meets, so any mutation applies to any state and fast-check can shrink it.
 */
import fc from 'fast-check';
import { PACKED_MAX_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../virtio/constants.ts';
import { DESC_SIZE } from '../../virtio/queue/layout.ts';
import { bytesToBase64 } from '../../virtio/state/base64.ts';
import type { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { LAB_RAM } from './lab-world.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = ReadonlyArray<string | number>;

export type Mutation =
  | { readonly kind: 'number'; readonly pick: number; readonly value: number }
  | { readonly kind: 'nudge'; readonly pick: number; readonly delta: number }
  | { readonly kind: 'replace'; readonly pick: number; readonly value: Json }
  | { readonly kind: 'flip'; readonly pick: number }
  | { readonly kind: 'drop-key'; readonly pick: number; readonly key: number }
  | { readonly kind: 'add-key'; readonly pick: number; readonly key: string; readonly value: Json }
  | { readonly kind: 'array'; readonly pick: number; readonly op: 'duplicate' | 'remove' | 'truncate' | 'reverse' | 'append'; readonly at: number; readonly value: Json }
  | { readonly kind: 'string'; readonly pick: number; readonly value: string }
  | { readonly kind: 'deep'; readonly pick: number; readonly depth: number; readonly object: boolean }
  | { readonly kind: 'giant'; readonly pick: number; readonly length: number; readonly array: boolean }
  | { readonly kind: 'transplant'; readonly from: number; readonly to: number }
  | { readonly kind: 'in-flight'; readonly pick: number; readonly count: number; readonly held: boolean }
  | { readonly kind: 'ram'; readonly pick: number; readonly shape: 'long' | 'indirect' | 'random'; readonly seed: number; readonly fill: boolean };

// ---- values -----------------------------------------------------------------------------

/** Numbers at every width's edges, negatives, non-integers and past 2^53. */
const BOUNDARY_NUMBERS = [
  0, 1, -1, 2, 3, 15, 16, 17, 63, 64, 65, 255, 256, 257, 0x7fff, 0x8000, 0xffff, 0x10000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53,
  2 ** 64, -(2 ** 31), -(2 ** 53), 0.5, 1.5, -0.5, 1e21, 1e308, -1e308, 5e-324,
];
/** Strings that look like numbers, hex, tags and booleans. */
const ODD_STRINGS = [
  '', 'NaN', 'Infinity', '-Infinity', '-1', '0', '1', '1e3', ' 1', '0x', '0x10', '0X1F', '0x-1', '0xffffffffffffffff', '0x10000000000000000',
  '0x00000000000000001', 'null', 'true', 'split', 'packed', 'virtio-pci-function', 'virtio-lab-devices', 'virtio-net', '__proto__',
];
/** Keys a lookup might find on Object.prototype, and keys the format uses elsewhere. */
const ODD_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'length', 'engine', 'broken', 'name', 'extra', ''];

const anyJsonArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(...BOUNDARY_NUMBERS),
  fc.constantFrom<Json>(...ODD_STRINGS),
  fc.constantFrom<Json>(null, true, false, [], {}, [0], [0, 0], { x: 1 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** Base64, canonical or slightly off (padding, alphabet, case), of short or bound-sized byte runs. */
const base64ish: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(fc.uint8Array({ maxLength: 70 }), fc.integer({ min: 0, max: 5000 }).map((n) => new Uint8Array(n))), fc.nat(6))
  .map(([bytes, twist]) => {
    const b64 = bytesToBase64(bytes);
    switch (twist) {
      case 0:
        return b64.replace(/=+$/, ''); // padding dropped
      case 1:
        return `${b64}=`;
      case 2:
        return `${b64.slice(0, -1)}*`;
      case 3:
        return ` ${b64}`;
      case 4:
        return b64.replace(/[A-Z]/g, '-');
      default:
        return b64;
    }
  });

const stringArb: fc.Arbitrary<string> = fc.oneof(base64ish, fc.constantFrom(...ODD_STRINGS), fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 40 }));

// Up to the size of the file's device section (SNAPSHOT_LIMITS.devicesBytes, 1 MiB) and past it.
const giantLengthArb = fc.oneof(fc.constantFrom(1 << 10, 1 << 16, 1 << 19, (1 << 20) + 1), fc.integer({ min: 100, max: 1 << 19 }));

const pick = fc.nat();

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('number' as const), pick, value: fc.constantFrom(...BOUNDARY_NUMBERS) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('nudge' as const), pick, delta: fc.constantFrom(-2, -1, 1, 2, 64, -64, 256, 0x10000) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('replace' as const), pick, value: anyJsonArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), pick }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('drop-key' as const), pick, key: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add-key' as const), pick, key: fc.constantFrom(...ODD_KEYS), value: anyJsonArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('array' as const),
      pick,
      op: fc.constantFrom('duplicate' as const, 'remove' as const, 'truncate' as const, 'reverse' as const, 'append' as const),
      at: fc.nat(),
      value: anyJsonArb,
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('string' as const), pick, value: stringArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep' as const), pick, depth: fc.oneof(fc.integer({ min: 2, max: 50 }), fc.integer({ min: 500, max: 1500 })), object: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('giant' as const), pick, length: giantLengthArb, array: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('transplant' as const), from: pick, to: pick }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('in-flight' as const), pick, count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(1 << 16)), held: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('ram' as const),
      pick,
      shape: fc.constantFrom('long' as const, 'indirect' as const, 'random' as const),
      seed: fc.nat(),
      fill: fc.boolean(),
    }),
  },
);

// ---- the tree ---------------------------------------------------------------------------

interface Node {
  readonly path: Path;
  readonly value: Json;
}

/** Deeper than any state's own nodes (a nest a mutation built is not walked into). */
const MAX_TARGET_DEPTH = 16;
/** Elements of one array that can be targets (a giant one a mutation built is not walked whole). */
const MAX_TARGET_ITEMS = 300;

/** The nodes of `root` down to MAX_TARGET_DEPTH, parents before children (iterative: a mutation may nest thousands deep). */
function nodes(root: Json): Node[] {
  const out: Node[] = [];
  const stack: Node[] = [{ path: [], value: root }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    out.push(node);
    const { path, value } = node;
    if (path.length >= MAX_TARGET_DEPTH || value === null || typeof value !== 'object') continue;
    const entries: Array<[string | number, Json]> = Array.isArray(value) ? value.slice(0, MAX_TARGET_ITEMS).map((v, i) => [i, v]) : Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ path: [...path, entries[i]![0]], value: entries[i]![1] });
  }
  return out;
}

function isObject(v: Json): v is { [key: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `root` with the node at `path` replaced (the root itself for an empty path). */
function setAt(root: Json, path: Path, value: Json): Json {
  if (path.length === 0) return value;
  let parent = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  // defineProperty: a "__proto__" key stays an own data property, as JSON.parse makes it.
  Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
  return root;
}

function chosen(list: Node[], n: number): Node | undefined {
  return list.length ? list[n % list.length] : undefined;
}

function clone(v: Json): Json {
  return JSON.parse(JSON.stringify(v)) as Json;
}

function nest(depth: number, object: boolean): Json {
  let v: Json = 0;
  for (let i = 0; i < depth; i++) v = object ? { x: v } : [v];
  return v;
}

/** Apply one JSON mutation; returns the new root (the same object, edited, unless the root was replaced). */
function mutateJson(root: Json, m: Mutation): Json {
  const all = nodes(root);
  const of = (keep: (v: Json) => boolean) => all.filter((n) => keep(n.value));
  switch (m.kind) {
    case 'number': {
      const n = chosen(of((v) => typeof v === 'number'), m.pick);
      return n ? setAt(root, n.path, m.value) : root;
    }
    case 'nudge': {
      const n = chosen(of((v) => typeof v === 'number'), m.pick);
      return n ? setAt(root, n.path, (n.value as number) + m.delta) : root;
    }
    case 'replace': {
      const n = chosen(all, m.pick)!;
      return setAt(root, n.path, clone(m.value));
    }
    case 'flip': {
      const n = chosen(of((v) => typeof v === 'boolean'), m.pick);
      return n ? setAt(root, n.path, !n.value) : root;
    }
    case 'drop-key': {
      const n = chosen(of((v) => isObject(v) && Object.keys(v).length > 0), m.pick);
      if (!n) return root;
      const obj = n.value as Record<string, Json>;
      const keys = Object.keys(obj);
      delete obj[keys[m.key % keys.length]!];
      return root;
    }
    case 'add-key': {
      const n = chosen(of(isObject), m.pick);
      if (!n) return root;
      setAt(root, [...n.path, m.key], clone(m.value));
      return root;
    }
    case 'array': {
      const n = chosen(of(Array.isArray), m.pick);
      if (!n) return root;
      const a = n.value as Json[];
      const at = a.length ? m.at % a.length : 0;
      if (m.op === 'duplicate' && a.length) a.splice(at, 0, clone(a[at]!));
      else if (m.op === 'remove') a.splice(at, 1);
      else if (m.op === 'truncate') a.length = at;
      else if (m.op === 'reverse') a.reverse();
      else a.push(clone(m.value));
      return root;
    }
    case 'string': {
      const n = chosen(of((v) => typeof v === 'string'), m.pick);
      return n ? setAt(root, n.path, m.value) : root;
    }
    case 'deep':
      return setAt(root, chosen(all, m.pick)!.path, nest(m.depth, m.object));
    case 'giant': {
      const n = chosen(all, m.pick)!;
      // 'A' is base64's zero: a giant string is also giant "valid" base64.
      return setAt(root, n.path, m.array ? new Array<Json>(m.length).fill(0) : 'A'.repeat(m.length));
    }
    case 'transplant': {
      const from = chosen(all, m.from)!;
      const to = chosen(all, m.to)!;
      return setAt(root, to.path, clone(from.value));
    }
    case 'in-flight':
      addInFlight(root, m);
      return root;
    case 'ram': {
      // The RAM itself is rewritten by mutateRam; here, with `fill`, every head of that queue goes in flight.
      const split = splitQueues(root);
      if (m.fill && split.length) putInFlight(split[m.pick % split.length]!, Number.MAX_SAFE_INTEGER, 0);
      return root;
    }
  }
}

// ---- format-aware mutations -------------------------------------------------------------

type Obj = Record<string, Json>;

/** Enabled queues with their engine: [function, queue] objects of a LabDevicesState. */
function liveQueues(root: Json): LiveQueue[] {
  const out: LiveQueue[] = [];
  const functions = isObject(root) && Array.isArray(root.functions) ? root.functions : [];
  for (const fn of functions) {
    if (!isObject(fn) || !Array.isArray(fn.queues)) continue;
    fn.queues.forEach((queue, index) => {
      if (isObject(queue) && isObject(queue.engine) && typeof queue.size === 'number') out.push({ fn, queue, index });
    });
  }
  return out;
}

type LiveQueue = { fn: Obj; queue: Obj; index: number };

/** The NIC's held rx chains list when `q` is its receive queue (rxHeld claims chains there). */
function rxHeldOf({ fn, index }: LiveQueue): Json[] | undefined {
  const device = isObject(fn.device) ? fn.device : undefined;
  return index === 0 && device && Array.isArray(device.rxHeld) ? device.rxHeld : undefined;
}

/**
 * Put up to `count` more chains in flight on `target`, with the positions moved so the
 * counts agree (split: lastAvailIdx; packed: nextAvail and its wrap counter), and claimed by
 * the NIC when it is its receive queue, so the restore walks them all and the device keeps them.
 */
function putInFlight(target: LiveQueue, count: number, start: number): void {
  const { queue } = target;
  const engine = queue.engine as Obj;
  const size = queue.size as number;
  const inFlight = engine.inFlight;
  // An earlier mutation may have set the size to anything: the loops below run up to it.
  if (!Array.isArray(inFlight) || !Number.isInteger(size) || size < 1 || size > PACKED_MAX_SIZE) return;
  const claimed = rxHeldOf(target);
  if (engine.layout === 'split' && typeof engine.lastAvailIdx === 'number') {
    const busy = new Set(inFlight);
    const added: number[] = [];
    for (let h = start % size, i = 0; i < size && added.length < count; h = (h + 1) % size, i++) if (!busy.has(h)) added.push(h);
    engine.inFlight = [...(inFlight as number[]), ...added].sort((a, b) => a - b);
    engine.lastAvailIdx = (engine.lastAvailIdx + added.length) & 0xffff;
    claimed?.push(...added);
  } else if (engine.layout === 'packed' && typeof engine.nextAvail === 'number') {
    const held = inFlight.reduce<number>((n, c) => n + (isObject(c) && typeof c.slots === 'number' ? c.slots : 0), 0);
    const ids = new Set(inFlight.map((c) => (isObject(c) ? c.id : -1)));
    const room = Math.min(count, size - held);
    let at = engine.nextAvail;
    for (let id = 0, n = 0; id < size && n < room; id++) {
      if (ids.has(id)) continue;
      // One writable slot each, in the top half of RAM (away from the driver's rings).
      inFlight.push({ id, firstSlot: at, slots: 1, indirect: false, readable: [], writable: [LAB_RAM / 2 + 64 * id, 64] });
      claimed?.push(id);
      at = (at + 1) % size;
      if (at === 0) engine.availWrap = !engine.availWrap;
      n++;
    }
    engine.nextAvail = at;
  }
}

/** The in-flight mutation's queue: with `held`, the NIC's receive queue where there is one. */
function addInFlight(root: Json, m: Extract<Mutation, { kind: 'in-flight' }>): void {
  const live = liveQueues(root);
  const rx = live.filter((q) => rxHeldOf(q));
  const from = m.held && rx.length ? rx : live;
  if (from.length) putInFlight(from[m.pick % from.length]!, m.count, m.pick >>> 4);
}

/** The live split queues, the ones whose chains in flight a restore re-reads from RAM. */
function splitQueues(root: Json): LiveQueue[] {
  return liveQueues(root).filter(({ queue }) => (queue.engine as Obj).layout === 'split');
}

/** Descriptor-table addresses of the live split queues, per function, for mutateRam. */
export interface RamTarget {
  readonly fn: number;
  readonly desc: number;
  readonly size: number;
}

export function ramTargets(state: unknown): RamTarget[] {
  const root = state as Json;
  const functions = isObject(root) && Array.isArray(root.functions) ? root.functions : [];
  return splitQueues(root).flatMap(({ fn, queue }) => {
    const desc = Array.isArray(queue.desc) ? queue.desc[0] : undefined;
    return typeof desc === 'number' ? [{ fn: functions.indexOf(fn), desc, size: queue.size as number }] : [];
  });
}

function writeDesc(memory: ArrayMemory, at: number, addr: number, len: number, flags: number, next: number): void {
  if (at < 0 || at + DESC_SIZE > memory.size) return;
  const dv = new DataView(memory.bytes.buffer, memory.bytes.byteOffset);
  dv.setUint32(at, addr, true);
  dv.setUint32(at + 4, 0, true);
  dv.setUint32(at + 8, len, true);
  dv.setUint16(at + 12, flags, true);
  dv.setUint16(at + 14, next, true);
}

/**
 * Rewrite a split queue's descriptor table in the restored RAM (`memories` by function): one
 * chain through the whole table ('long', each head walks to its end), every descriptor an
 * indirect table of `size` chained entries ('indirect', the longest legal walk), or bytes.
 */
export function mutateRam(targets: readonly RamTarget[], memories: readonly ArrayMemory[], m: Extract<Mutation, { kind: 'ram' }>): void {
  const target = targets.length ? targets[m.pick % targets.length] : undefined;
  const memory = target && memories[target.fn];
  if (!target || !memory) return;
  const { desc, size } = target;
  // Buffers and tables in the top half of RAM, away from the driver's rings.
  const buffers = memory.size / 2;
  if (m.shape === 'random') {
    let x = m.seed | 1;
    for (let i = 0; i < DESC_SIZE * size && desc + i < memory.size; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      memory.bytes[desc + i] = x & 0xff;
    }
  } else if (m.shape === 'long') {
    for (let i = 0; i < size; i++) writeDesc(memory, desc + DESC_SIZE * i, buffers + 16 * i, 16, VIRTQ_DESC_F_WRITE | (i + 1 < size ? VIRTQ_DESC_F_NEXT : 0), i + 1);
  } else {
    const table = buffers;
    for (let k = 0; k < size; k++) writeDesc(memory, table + DESC_SIZE * k, buffers + 0x10000 + 16 * k, 16, VIRTQ_DESC_F_WRITE | (k + 1 < size ? VIRTQ_DESC_F_NEXT : 0), k + 1);
    for (let i = 0; i < size; i++) writeDesc(memory, desc + DESC_SIZE * i, table, DESC_SIZE * size, VIRTQ_DESC_F_INDIRECT, 0);
  }
}

/** `state` (a valid LabDevicesState, untouched) with `mutations` applied to a copy of its JSON. */
export function mutateState(state: unknown, mutations: readonly Mutation[]): Json {
  let root = clone(state as Json);
  for (const m of mutations) root = mutateJson(root, m);
  return root;
}
