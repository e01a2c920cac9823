/** The lab's network relay: WebSocket switch rooms with a QEMU-user-networking-like gateway. */
export { attachRelay, roomFromPath, DEFAULT_RELAY_OPTIONS, type Relay, type RelayOptions, type RelayStats } from './relay.ts';
export { Gateway, DEFAULT_GATEWAY_OPTIONS, type GatewayOptions, type GatewayStats, type NatPolicy } from './gateway.ts';
export { SwitchRoom, SwitchPort, type DropReason, type PortSink, type RateLimit, type RoomStats, type SourceGuard } from './switch.ts';
export { TcpNat, DEFAULT_TCP_OPTIONS, type TcpOptions } from './tcp.ts';
