/**
 * Relay settings from the command line and the environment, shared by `npm start` (app +
 * relay) and `npm run relay` (relay alone, e.g. N of them behind a load balancer):
 * `--nat off|host|all` (RELAY_NAT), RELAY_TOKEN, RELAY_ORIGINS, `--room-clients N`
 * (RELAY_ROOM_CLIENTS), `--cluster nats://HOST:PORT` (RELAY_CLUSTER).
 */
import type { NatPolicy, RelayOptions } from '../relay/index.ts';

export interface RelayConfig {
  options: Partial<RelayOptions>;
  /** NATS server URL when clustered, else null. */
  cluster: string | null;
}

export function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  return eq ? eq.slice(name.length + 1) : undefined;
}

/** Throws an Error whose message is meant for the user. */
export function relayConfig(argv: string[], env: NodeJS.ProcessEnv, host: string): RelayConfig {
  const nat = argValue(argv, '--nat') ?? env.RELAY_NAT ?? 'host';
  if (nat !== 'off' && nat !== 'host' && nat !== 'all') throw new Error(`--nat must be off, host or all, got "${nat}"`);
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  const token = env.RELAY_TOKEN || null;
  if (!loopback && !token) {
    throw new Error(
      `HOST=${host} is not loopback: the relay would let anyone reach this host's ports. ` +
        'Set RELAY_TOKEN=<secret> (clients connect to /relay/<room>?token=<secret>) or bind to 127.0.0.1.',
    );
  }
  const roomClients = Number(argValue(argv, '--room-clients') ?? env.RELAY_ROOM_CLIENTS ?? 32);
  if (!Number.isInteger(roomClients) || roomClients < 1 || roomClients > 50_000) {
    throw new Error(`--room-clients must be 1..50000, got "${roomClients}"`);
  }
  const cluster = argValue(argv, '--cluster') ?? env.RELAY_CLUSTER ?? null;
  if (cluster !== null && !/^(nats|tls):\/\/[^\s/]+$/.test(cluster)) throw new Error(`--cluster must be nats://HOST:PORT, got "${cluster}"`);
  const origins = env.RELAY_ORIGINS?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    cluster,
    options: {
      token,
      maxClientsPerRoom: roomClients,
      gateway: { nat: nat as NatPolicy },
      allowedOrigins: origins && origins.length ? origins : null,
      // Off on loopback; beyond it, a guest should not be able to flood the host.
      rateLimit: loopback ? null : { framesPerSecond: 20_000, bytesPerSecond: 50 << 20, burstSeconds: 1 },
    },
  };
}
