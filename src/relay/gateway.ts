/** The relay's gateway: gateway-core.ts with the relay host's own sockets (node-uplink.ts). */
import { GatewayCore, type GatewayOptions } from './gateway-core.ts';
import type { LeaseBook, PoolConfig } from './lease-book.ts';
import { nodeUplink } from './node-uplink.ts';
import type { SwitchRoom } from './switch.ts';

export * from './gateway-core.ts';

export class Gateway extends GatewayCore {
  constructor(
    room: SwitchRoom,
    opts: Partial<GatewayOptions> = {},
    /** A shared lease book for the pool (a cluster's); default this gateway's own. */
    leases?: (pool: PoolConfig, isOurs: (ip: number) => boolean) => LeaseBook,
  ) {
    super(room, nodeUplink, opts, leases);
  }
}
