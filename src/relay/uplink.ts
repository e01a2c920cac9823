/**
 * The gateway's "outside": how its NAT opens TCP connections and UDP sockets and resolves
 * names. The gateway (gateway-core.ts and its services) imports no Node module, so the relay
 * (Node: node-uplink.ts) and the VM worker (wisp or fetch uplinks) run the same code. The
 * shapes are the subsets of Node's net.Socket and dgram.Socket the NAT uses, so Node's own
 * sockets fit as they are and the browser uplinks mimic them.
 */
import type { LookupFn } from './dns-server.ts';

export interface TcpTarget {
  host: string;
  port: number;
}

/** A TCP byte stream to a NAT target (Node's net.Socket fits). */
export interface HostSocket {
  readonly destroyed: boolean;
  /** Bytes written but not yet sent on: the NAT shrinks its window by this much. */
  readonly writableLength: number;
  setNoDelay(noDelay?: boolean): unknown;
  /** Calls `onTimeout` after `ms` without activity (0: never). */
  setTimeout(ms: number, onTimeout?: () => void): unknown;
  once(event: 'connect', listener: () => void): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close', listener: (hadError: boolean) => void): unknown;
  write(data: Uint8Array): unknown;
  end(): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(err?: Error): unknown;
  /** Ends the stream as a reset (the guest's side is gone, not finished). */
  resetAndDestroy(): unknown;
}

export interface UdpRemote {
  address: string;
  port: number;
  family: string;
}

/** A UDP socket (Node's dgram.Socket fits). */
export interface HostUdpSocket {
  send(msg: Uint8Array, port: number, address: string, callback: (err: Error | null) => void): void;
  on(event: 'message', listener: (msg: Uint8Array, remote: UdpRemote) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  bind(port: number, address: string): unknown;
  close(): unknown;
}

export interface Uplink {
  /** Connects at once; the socket emits 'connect' or 'close' (with hadError). */
  connectTcp(target: TcpTarget): HostSocket;
  createUdp(): HostUdpSocket;
  /** Names outside the lab (nat 'all'), IPv4 only; rejects with code ENOTFOUND for NXDOMAIN. */
  lookup: LookupFn;
}

/** Runs `fn` after the current burst of input (Node's setImmediate; a zero timer elsewhere). */
export const afterBurst: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
    ? (fn) => void (globalThis as unknown as { setImmediate(f: () => void): unknown }).setImmediate(fn)
    : (fn) => void setTimeout(fn, 0);
