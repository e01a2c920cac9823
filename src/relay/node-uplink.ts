/** The relay's uplink: real sockets of the relay's host (Node's net, dgram and dns). */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import net from 'node:net';
import { parseIp } from '../wire/ipv4.ts';
import type { HostSocket, HostUdpSocket, TcpTarget, Uplink } from './uplink.ts';

/** Node's resolver, IPv4 only. */
export function nodeLookup(name: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(name, { family: 4, all: true }, (err, addrs) => {
      if (err) reject(err);
      else resolve(addrs.map((a) => parseIp(a.address)));
    });
  });
}

export const nodeUplink: Uplink = {
  connectTcp: (target: TcpTarget): HostSocket => net.connect({ host: target.host, port: target.port, allowHalfOpen: true }),
  createUdp: (): HostUdpSocket => dgram.createSocket('udp4'),
  lookup: nodeLookup,
};
