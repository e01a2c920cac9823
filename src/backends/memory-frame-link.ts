/**
 * Two FrameLinks joined back to back in memory, for tests and loopback labs: what one end
 * sends, the other end's owner receives. Both ends share one link state.
 */
import type { FrameLink, FrameLinkEvents } from './frame-link.ts';

export interface MemoryLinkOptions {
  /** Deliver inside send() (default, deterministic tests) or from a microtask. */
  delivery?: 'sync' | 'microtask';
  /** Start up (default true). */
  up?: boolean;
}

class Wire {
  up: boolean;
  constructor(
    up: boolean,
    readonly delivery: 'sync' | 'microtask',
  ) {
    this.up = up;
  }
}

export class MemoryFrameLink implements FrameLink {
  /** The other end (set by memoryLinkPair). */
  peer!: MemoryFrameLink;
  /** Frames this end sent (accepted by send()), and frames it refused. */
  sentFrames = 0;
  dropped = 0;
  /** What the far end takes whole (FrameLink.superSegmentSendLimit); tests set it. */
  superSegmentSendLimit = 0;
  /** send() delivers a copy (FrameLink.sendCopies). */
  readonly sendCopies = true;
  private events: FrameLinkEvents | undefined;
  private closed = false;

  constructor(private readonly wire: Wire) {}

  get up(): boolean {
    return this.wire.up && !this.closed;
  }

  attach(events: FrameLinkEvents): void {
    if (this.events) throw new Error('MemoryFrameLink: attach() called twice');
    this.events = events;
  }

  send(frame: Uint8Array): boolean {
    if (!this.up || this.peer.closed) {
      this.dropped++;
      return false;
    }
    this.sentFrames++;
    // Copy: the receiver owns what it gets, the sender may reuse its buffer.
    const copy = frame.slice();
    if (this.wire.delivery === 'sync') this.peer.events?.onFrame(copy);
    else queueMicrotask(() => this.peer.events?.onFrame(copy));
    return true;
  }

  /** Bring the shared wire up or down; both owners hear about a change. */
  setUp(up: boolean): void {
    if (this.wire.up === up) return;
    this.wire.up = up;
    this.events?.onLinkChange(up);
    this.peer.events?.onLinkChange(up);
  }

  close(): void {
    this.closed = true;
    this.events = undefined;
  }
}

/** Two connected ends: a.send(f) → b's onFrame(f) and vice versa. */
export function memoryLinkPair(opts: MemoryLinkOptions = {}): [MemoryFrameLink, MemoryFrameLink] {
  const wire = new Wire(opts.up ?? true, opts.delivery ?? 'sync');
  const a = new MemoryFrameLink(wire);
  const b = new MemoryFrameLink(wire);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
