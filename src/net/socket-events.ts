/**
 * The event half of a HostSocket (relay/uplink.ts) for uplinks that are not Node sockets
 * (fetch, wisp): listeners by name, and the flags the TCP NAT reads. Subclasses call the
 * protected helpers as their stream opens, carries data and ends.
 */
import type { HostSocket } from '../relay/uplink.ts';

type Listener = (...args: never[]) => void;

export abstract class SocketEvents {
  private readonly listeners = new Map<string, Array<{ fn: Listener; once: boolean }>>();
  destroyed = false;
  private ended = false;
  private timeoutMs = 0;
  private timeoutFn: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  on(event: string, fn: Listener): this {
    const list = this.listeners.get(event) ?? [];
    list.push({ fn, once: false });
    this.listeners.set(event, list);
    return this;
  }

  once(event: string, fn: Listener): this {
    const list = this.listeners.get(event) ?? [];
    list.push({ fn, once: true });
    this.listeners.set(event, list);
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  /** Like Node's: `fn` after `ms` of no activity; here activity is the stream opening. */
  setTimeout(ms: number, fn?: () => void): this {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timeoutMs = ms;
    this.timeoutFn = fn;
    if (ms > 0 && fn) this.timer = setTimeout(() => this.timeoutFn?.(), ms);
    return this;
  }

  protected emit(event: string, ...args: unknown[]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    this.listeners.set(
      event,
      list.filter((l) => !l.once),
    );
    for (const l of list) (l.fn as (...a: unknown[]) => void)(...args);
  }

  protected opened(): void {
    if (this.destroyed) return;
    this.setTimeout(0);
    this.emit('connect');
  }

  protected data(chunk: Uint8Array): void {
    if (!this.destroyed && chunk.length) this.emit('data', chunk);
  }

  /** The far end finished sending. */
  protected remoteEnded(): void {
    if (this.destroyed || this.ended) return;
    this.ended = true;
    this.emit('end');
  }

  /** The stream is over: `hadError` makes the guest's connection a reset. */
  protected finish(hadError: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.setTimeout(0);
    this.emit('close', hadError);
    this.listeners.clear();
  }

  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.teardown();
    this.finish(err !== undefined);
    return this;
  }

  resetAndDestroy(): this {
    if (this.destroyed) return this;
    this.teardown();
    this.finish(true);
    return this;
  }

  /** Release what the uplink holds (a fetch, a wisp stream); called once, before 'close'. */
  protected abstract teardown(): void;
}

/** Compile-time check that the event half plus the stream methods make a HostSocket. */
export type HostSocketImpl = SocketEvents & Pick<HostSocket, 'writableLength' | 'write' | 'end' | 'pause' | 'resume'>;
