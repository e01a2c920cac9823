/**
 * Numbers of virtio-console (§5.3) that the device, its tests and the inspector share.
 */

/** §5.3.3 Feature bits. */
export const ConsoleFeature = {
  /** cols/rows in config space are valid. */
  VIRTIO_CONSOLE_F_SIZE: 0,
  /** max_nr_ports is valid and the control queues exist (ports beyond port 0). */
  VIRTIO_CONSOLE_F_MULTIPORT: 1,
  /** The driver may write emerg_wr. Not offered. */
  VIRTIO_CONSOLE_F_EMERG_WRITE: 2,
} as const;

/** §5.3.6.2 struct virtio_console_control.event. */
export const ConsoleControl = {
  VIRTIO_CONSOLE_DEVICE_READY: 0,
  VIRTIO_CONSOLE_DEVICE_ADD: 1,
  VIRTIO_CONSOLE_DEVICE_REMOVE: 2,
  VIRTIO_CONSOLE_PORT_READY: 3,
  VIRTIO_CONSOLE_CONSOLE_PORT: 4,
  VIRTIO_CONSOLE_RESIZE: 5,
  VIRTIO_CONSOLE_PORT_OPEN: 6,
  VIRTIO_CONSOLE_PORT_NAME: 7,
} as const;

export const CONTROL_EVENT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ConsoleControl).map(([name, event]) => [event, name.replace('VIRTIO_CONSOLE_', '')]),
);

/** struct virtio_console_control: le32 id, le16 event, le16 value. */
export const CONTROL_SIZE = 8;

/** §5.3.2 Virtqueues: port 0's pair, then the control pair, then a pair per further port. */
export const CONTROL_RECEIVEQ = 2;
export const CONTROL_TRANSMITQ = 3;

export function receiveqOf(port: number): number {
  return port === 0 ? 0 : 2 + 2 * port;
}

export function transmitqOf(port: number): number {
  return port === 0 ? 1 : 3 + 2 * port;
}

/** Which queue is which: a port's receiveq (device → driver) or transmitq, or a control queue. */
export type ConsoleQueueRole = { kind: 'control-rx' } | { kind: 'control-tx' } | { kind: 'rx'; port: number } | { kind: 'tx'; port: number };

export function queueRole(queue: number): ConsoleQueueRole {
  if (queue === CONTROL_RECEIVEQ) return { kind: 'control-rx' };
  if (queue === CONTROL_TRANSMITQ) return { kind: 'control-tx' };
  const port = queue < 2 ? 0 : (queue - 2) >> 1;
  return queue % 2 === 0 ? { kind: 'rx', port } : { kind: 'tx', port };
}

/** Queue names in index order for `ports` ports ("receiveq0", "transmitq0", "control receiveq", …). */
export function consoleQueueNames(ports: number): string[] {
  const names: string[] = [];
  for (let q = 0; q < 2 + 2 * ports; q++) {
    const role = queueRole(q);
    names.push(role.kind === 'control-rx' ? 'control receiveq' : role.kind === 'control-tx' ? 'control transmitq' : `${role.kind === 'rx' ? 'receiveq' : 'transmitq'}${role.port}`);
  }
  return names;
}
