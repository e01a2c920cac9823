import { describe, expect, it } from 'vitest';
import { InspectorStore } from '../inspector/store.ts';
import type { FunctionSnapshot, InspectorSnapshot } from '../../virtio/inspect/types.ts';
import { parseAnswer, typeValue } from './checks.ts';
import { LessonEngine, type LessonHost } from './engine.ts';
import type { Lesson } from './types.ts';

const fn = (status: number): FunctionSnapshot => ({
  name: 'virtio-rng',
  shortName: 'rng',
  deviceId: 4,
  status,
  statusNames: [],
  features: [],
  featuresOk: true,
  bar: { kind: 'io', size: 64 },
  isr: 0,
  config: [],
  queues: [],
  resets: 0,
  events: [],
});
const snap = (status: number): InspectorSnapshot => ({ now: 0, functions: [fn(status)] });

const lesson: Lesson = {
  id: 'status',
  title: 'Status',
  summary: '',
  restore: 'echo restored',
  steps: [
    { title: 'a', text: '', cite: [], device: 'rng', action: { kind: 'freeze', queue: 0 }, check: typeValue('status?', 'status-value', (v) => v.fn.status, 'read it') },
    { title: 'b', text: '', cite: [], device: 'rng', action: { kind: 'run', command: (v) => `echo ${v.fn.status}` }, check: typeValue('status?', 'status-value', (v) => v.fn.status, 'read it') },
  ],
};

function setup(storage = new Map<string, string>()) {
  const store = new InspectorStore(() => undefined);
  const calls: string[] = [];
  const host: LessonHost = {
    inspector: store,
    control: (d, q, a) => calls.push(`${a} ${d}:${q}`),
    type: (t) => calls.push(`type ${t}`),
    devices: () => [],
    port: 8080,
  };
  const kv = { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => void storage.set(k, v) };
  return { store, calls, engine: new LessonEngine([lesson], host, kv), storage };
}

describe('LessonEngine', () => {
  it('judges an answer against what the panel painted recently, not a fixed value', () => {
    const { store, engine } = setup();
    expect(engine.open('status')).toBe(true);
    expect(store.visible).toBe(true);
    expect(store.tab).toBe('virtio-rng');
    expect(engine.answerNumber('15')).toMatchObject({ ok: false }); // nothing painted yet
    store.markDisplayed(snap(0x0f));
    expect(engine.answerNumber('0x0f')).toEqual({ ok: true });
    store.markDisplayed(snap(0x01));
    // The learner read 0x0f a moment ago: still right; 7 was never on screen.
    expect(engine.answerNumber('15')).toEqual({ ok: true });
    expect(engine.answerNumber('7')).toEqual({ ok: false, why: 'read it', look: 'status-value' });
    expect(engine.answerNumber('seven')).toMatchObject({ ok: false, why: expect.stringContaining('Type a number') });
  });

  it('remembers progress, resumes at the last step, and builds commands from the live view', () => {
    const { store, engine, storage } = setup();
    store.markDisplayed(snap(0x0f));
    engine.open('status');
    engine.answerNumber('15');
    engine.next();
    expect(engine.command()).toBe('echo 15');
    const again = setup(storage).engine;
    expect(again.progress('status')).toEqual({ step: 1, passed: [0] });
    again.open('status');
    expect(again.current.step).toBe(1);
    expect(again.open('nope')).toBe(false);
  });

  it('leaving a lesson resumes what it froze and restores the guest', () => {
    const { store, engine, calls } = setup();
    store.markDisplayed(snap(0x0f));
    engine.open('status', 0);
    engine.act();
    expect(calls).toEqual(['freeze rng:0']);
    engine.next();
    engine.run();
    expect(calls.at(-1)).toBe('type echo 15\r');
    engine.close();
    expect(calls.slice(-2)).toEqual(['resume rng:0', 'type echo restored  # leaving the lesson: put back what it changed\r']);
    expect(engine.current.lesson).toBeUndefined();
  });

  it('parses decimal and hex answers', () => {
    expect(parseAnswer(' 0xC100 ')).toBe(0xc100);
    expect(parseAnswer('1,024')).toBe(1024);
    expect(parseAnswer('2.5')).toBe(2.5);
    expect(parseAnswer('0x')).toBeUndefined();
    expect(parseAnswer('')).toBeUndefined();
  });
});
