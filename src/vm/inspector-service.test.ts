import { afterEach, describe, expect, it, vi } from 'vitest';
import { Feature, features } from '../virtio/constants.ts';
import type { InspectorSnapshot } from '../virtio/inspect/types.ts';
import { DriverMock } from '../virtio/testing/driver-mock.ts';
import { VirtioRng } from '../devices/rng/rng.ts';
import { VirtioConsole } from '../devices/console/console.ts';
import { ConsoleFeature } from '../devices/console/spec.ts';
import { InspectorService, SNAPSHOT_INTERVAL_MS } from './inspector-service.ts';

function setup() {
  const t = DriverMock.create(new VirtioRng((b) => b.fill(7)), { memorySize: 1 << 16 });
  const [q] = t.init({ features: features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_EVENT_IDX) });
  const posted: InspectorSnapshot[] = [];
  const service = new InspectorService([t.fn], (s) => posted.push(s));
  return { t, q: q!, posted, service };
}

afterEach(() => vi.useRealTimers());

describe('InspectorService', () => {
  it('traces and posts only while subscribed, at most every SNAPSHOT_INTERVAL_MS', () => {
    vi.useFakeTimers();
    const { t, q, posted, service } = setup();
    q.add({ writable: [16] });
    q.kick(); // not subscribed: counted, not traced
    expect(t.fn.tracer).toBeUndefined();
    service.subscribe();
    expect(posted.length).toBe(1);
    q.setUsedEvent(1); // the driver wants an interrupt for the next one
    q.add({ writable: [32] });
    q.kick();
    vi.advanceTimersByTime(SNAPSHOT_INTERVAL_MS * 4);
    expect(posted.length).toBe(5);
    const events = posted.flatMap((s) => s.functions[0]!.events);
    expect(events.map((e) => e.kind)).toEqual(['kick', 'pop', 'complete', 'interrupt']);
    expect(events[2]!.detail).toBe('32 random bytes');
    expect(posted.at(-1)!.functions[0]!.queues[0]!.counters.requests).toBe(2);
    service.unsubscribe();
    expect(t.fn.tracer).toBeUndefined();
    expect(t.fn.queue(0)!.observer).toBeUndefined();
    vi.advanceTimersByTime(SNAPSHOT_INTERVAL_MS * 4);
    expect(posted.length).toBe(5);
  });

  it('freeze / step / resume by short device name', () => {
    const { q, service } = setup();
    expect(service.control('rng', 0, 'freeze')).toBe(true);
    q.add({ writable: [8] });
    q.add({ writable: [8] });
    q.kick();
    expect(q.used()).toEqual([]);
    service.control('rng', 0, 'step');
    expect(q.used().length).toBe(1);
    service.control('virtio-rng', 0, 'resume');
    expect(q.used().length).toBe(1);
    expect(service.control('blk', 0, 'freeze')).toBe(false);
  });
});

describe('InspectorService with a registered device', () => {
  it('names the function by its descriptor: short name and device feature bits', () => {
    const t = DriverMock.create(new VirtioConsole({ ports: ['org.example.port'] }), { memorySize: 1 << 20 });
    t.init({ features: features(Feature.VIRTIO_F_VERSION_1, ConsoleFeature.VIRTIO_CONSOLE_F_MULTIPORT) });
    const posted: InspectorSnapshot[] = [];
    new InspectorService([t.fn], (s) => posted.push(s)).subscribe();
    const fn = posted[0]!.functions[0]!;
    expect(fn.shortName).toBe('console');
    const multiport = fn.features.find((f) => f.bit === ConsoleFeature.VIRTIO_CONSOLE_F_MULTIPORT);
    expect(multiport).toEqual({ bit: 1, name: 'VIRTIO_CONSOLE_F_MULTIPORT', offered: true, accepted: true });
    expect(fn.features.find((f) => f.bit === ConsoleFeature.VIRTIO_CONSOLE_F_SIZE)?.name).toBe('VIRTIO_CONSOLE_F_SIZE');
  });
});
