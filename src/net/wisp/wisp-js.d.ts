/**
 * The part of @mercuryworkshop/wisp-js (a third-party wisp server, a devDependency used only
 * by tests and never bundled) that our tests call. It ships no types.
 */
declare module '@mercuryworkshop/wisp-js/server' {
  import type { IncomingMessage } from 'node:http';
  import type { Duplex } from 'node:stream';

  export const server: {
    routeRequest(req: IncomingMessage, socket: Duplex, head: Buffer): void;
    /** Process-wide settings (see its README). */
    options: {
      hostname_whitelist: RegExp[] | null;
      port_whitelist: Array<number | [number, number]> | null;
      allow_direct_ip: boolean;
      allow_private_ips: boolean;
      allow_loopback_ips: boolean;
      allow_udp_streams: boolean;
      dns_method: 'lookup' | 'resolve' | ((hostname: string) => Promise<string>);
      wisp_version: 1 | 2;
    };
  };
  export const logging: { NONE: number; ERROR: number; WARN: number; set_level(level: number): void };
}
