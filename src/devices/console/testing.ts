/**
 * A virtio-console driver for tests, over DriverMock: it plays Linux's virtio_console side
 * of the control protocol (post control buffers, DEVICE_READY, PORT_READY, PORT_OPEN) and
 * reads what the device answered.
 */
import { DriverMock, type DriverMockOptions, type DriverQueue, type DriverRing } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { ringFeatures } from '../testing/ring-layout.ts';
import { concatBytes } from '../testing/equal-bytes.ts';
import { VirtioConsole, type VirtioConsoleOptions } from './console.ts';
import { encodeControl, parseControl, type ControlMessage } from './control.ts';
import { CONTROL_RECEIVEQ, CONTROL_SIZE, CONTROL_TRANSMITQ, ConsoleControl as C, receiveqOf, transmitqOf } from './spec.ts';

export const RUN_PORT = 'org.virtio-lab.run';

/** A control message as the driver received it, with PORT_NAME's name decoded. */
export interface ReceivedControl extends ControlMessage {
  name?: string;
}

export type ConsoleHarnessOptions = VirtioConsoleOptions & DriverMockOptions & { features?: bigint; ring?: RingLayout };

/** `ring`: the layout the driver negotiates; split (the default) keeps DriverQueue's raw split-ring helpers. */
export class ConsoleHarness<Q extends DriverRing = DriverQueue> {
  private constructor(
    readonly driver: DriverMock,
    readonly device: VirtioConsole,
    readonly queues: Q[],
  ) {}

  static create(opts?: ConsoleHarnessOptions & { ring?: 'split' }): ConsoleHarness<DriverQueue>;
  static create(opts: ConsoleHarnessOptions): ConsoleHarness<DriverRing>;
  static create(opts: ConsoleHarnessOptions = {}): ConsoleHarness<DriverRing> {
    const ring = opts.ring ?? 'split';
    const device = new VirtioConsole({ ports: [RUN_PORT], ...opts });
    const driver = DriverMock.create(device, { memorySize: opts.memorySize ?? 1 << 20, byteAccess: opts.byteAccess, pci: { ...opts.pci, ring } });
    const queues = driver.initRings({ features: ringFeatures(opts.features, ring) });
    return new ConsoleHarness<DriverRing>(driver, device, queues);
  }

  /** Reset and bring every queue up again, in the layout of the first bring-up. */
  reinit(): void {
    this.driver.reset();
    this.queues.splice(0, this.queues.length, ...(this.driver.initRings() as Q[]));
  }

  get ctrlRx(): Q {
    return this.queues[CONTROL_RECEIVEQ];
  }
  get ctrlTx(): Q {
    return this.queues[CONTROL_TRANSMITQ];
  }
  rxq(port: number): Q {
    return this.queues[receiveqOf(port)];
  }
  txq(port: number): Q {
    return this.queues[transmitqOf(port)];
  }

  /** Post `count` control receive buffers of `size` bytes and kick. */
  postControl(count = 8, size = 64): void {
    for (let i = 0; i < count; i++) this.ctrlRx.add({ writable: [size] });
    this.ctrlRx.kick();
  }

  sendControl(msg: ControlMessage, raw?: Uint8Array): void {
    this.ctrlTx.add({ readable: [raw ?? encodeControl(msg)] });
    this.ctrlTx.kick();
    this.ctrlTx.used();
  }

  /** Control messages the device has put in the control receiveq since the last call. */
  controls(): ReceivedControl[] {
    return this.ctrlRx.used().map((u) => {
      const msg = parseControl(u.data);
      if (!msg) throw new Error(`short control message (${u.len} bytes)`);
      const name = msg.event === C.VIRTIO_CONSOLE_PORT_NAME ? new TextDecoder().decode(u.data.subarray(CONTROL_SIZE)) : undefined;
      return name === undefined ? { ...msg } : { ...msg, name };
    });
  }

  /** What Linux does at probe and when the ports appear: every port ready, none opened yet. */
  handshake(): ReceivedControl[] {
    this.postControl(16);
    this.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 });
    for (const port of this.device.ports) this.sendControl({ id: port.id, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 });
    return this.controls();
  }

  openPort(port: number, open = true): void {
    this.sendControl({ id: port, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: open ? 1 : 0 });
  }

  /** The guest writes `parts` as one transmit buffer chain on `port`. */
  guestWrite(port: number, ...parts: Uint8Array[]): void {
    const q = this.txq(port);
    q.add({ readable: parts });
    q.kick();
    q.used();
  }

  /** Post receive buffers on `port` (one chain per size) and kick. */
  postRx(port: number, sizes: number[]): void {
    const q = this.rxq(port);
    for (const size of sizes) q.add({ writable: [size] });
    q.kick();
  }

  /** Bytes the device delivered into `port`'s receive buffers since the last call, concatenated. */
  received(port: number): Uint8Array {
    return concatBytes(this.rxq(port).used().map((u) => u.data));
  }
}
