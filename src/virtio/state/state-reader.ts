/**
 * Reading a saved state back: it comes from a file a user can upload, so every field is
 * checked for presence, type and range before anything uses it, and the first problem is a
 * FunctionStateError naming the field ("state.queues[1].engine.usedIdx: 70000 is not in 0..65535").
 * Strings and byte fields carry their bound, so reading never costs more than the bound says.
 */
import { base64ToBytes, base64Length } from './base64.ts';

/** A saved state that cannot be restored (malformed, out of range, or not this function's). */
export class FunctionStateError extends Error {
  /** `cause`: what a restore caught and reports as this (a device hook's or the ring walk's own exception). */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FunctionStateError';
  }
}

/** What a saved state is made of: it goes into a JSON section of a file as it is. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

export class StateReader {
  private constructor(
    private readonly value: unknown,
    /** Where this value sits in the state, for error messages. */
    readonly path: string,
  ) {}

  /** The whole state (untrusted). */
  static root(value: unknown, path = 'state'): StateReader {
    return new StateReader(value, path);
  }

  fail(problem: string): never {
    throw new FunctionStateError(`${this.path}: ${problem}`);
  }

  private object(): Record<string, unknown> {
    const v = this.value;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`expected an object, got ${show(v)}`);
    return v as Record<string, unknown>;
  }

  /** Check that this is an object (a state with no fields yet). */
  requireObject(): this {
    this.object();
    return this;
  }

  /** The field `key`, which must be present. */
  at(key: string): StateReader {
    const obj = this.object();
    if (!Object.hasOwn(obj, key) || obj[key] === undefined) this.fail(`missing "${key}"`);
    return new StateReader(obj[key], `${this.path}.${key}`);
  }

  /** The field `key`, or undefined when it is absent or null. */
  optional(key: string): StateReader | undefined {
    const obj = this.object();
    return obj[key] === undefined || obj[key] === null ? undefined : new StateReader(obj[key], `${this.path}.${key}`);
  }

  /** The value itself, untouched (for a nested format that its owner reads). */
  get raw(): unknown {
    return this.value;
  }

  isNull(): boolean {
    return this.value === null;
  }

  int(min: number, max: number): number {
    const v = this.value;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(`${show(v)} is not an integer in ${min}..${max}`);
    return v;
  }

  bool(): boolean {
    if (typeof this.value !== 'boolean') this.fail(`${show(this.value)} is not a boolean`);
    return this.value;
  }

  string(maxLength: number): string {
    const v = this.value;
    if (typeof v !== 'string') this.fail(`${show(v)} is not a string`);
    if (v.length > maxLength) this.fail(`string of ${v.length} characters, at most ${maxLength}`);
    return v;
  }

  /** A string that must be exactly `expected` (format tags). */
  literal<T extends string>(expected: T): T {
    if (this.value !== expected) this.fail(`${show(this.value)} is not "${expected}"`);
    return expected;
  }

  /** An unsigned 64-bit value written as "0x…" hex (JSON has no bigints). */
  u64(): bigint {
    const v = this.string(18);
    if (!/^0x[0-9a-f]{1,16}$/.test(v)) this.fail(`${show(v)} is not a 64-bit hex value like "0x1f"`);
    return BigInt(v);
  }

  /** An array of at most `maxLength` elements. */
  items(maxLength: number): StateReader[] {
    const v = this.value;
    if (!Array.isArray(v)) this.fail(`${show(v)} is not an array`);
    if (v.length > maxLength) this.fail(`${v.length} elements, at most ${maxLength}`);
    return v.map((item, i) => new StateReader(item, `${this.path}[${i}]`));
  }

  /** An array of exactly `length` elements. */
  tuple(length: number): StateReader[] {
    const items = this.items(length);
    if (items.length !== length) this.fail(`${items.length} elements, expected ${length}`);
    return items;
  }

  /** Bytes written as base64, at most `maxBytes` of them (the string is checked before decoding). */
  bytes(maxBytes: number): Uint8Array {
    const text = this.string(base64Length(maxBytes));
    const bytes = base64ToBytes(text);
    if (!bytes) this.fail('not base64');
    if (bytes.length > maxBytes) this.fail(`${bytes.length} bytes, at most ${maxBytes}`);
    return bytes;
  }
}

/** "0x…" for a saved 64-bit value (StateReader.u64 reads it back). */
export function hex64(value: bigint): string {
  return `0x${BigInt.asUintN(64, value).toString(16)}`;
}
