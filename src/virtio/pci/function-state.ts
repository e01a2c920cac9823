/**
 * A virtio-pci function's saved state (VM snapshots): plain JSON, bigints as hex strings.
 * It holds everything the transport keeps, each live queue's engine state, and the device's
 * own part (its descriptor's state hooks). v86 saves the rest: guest RAM, the CPU, the
 * interrupt controllers and the host-owned PCI config bytes (command, BARs, interrupt line).
 *
 * Not saved, on purpose: counters (stats, per-queue kicks/interrupts, error reports) start
 * from zero in the restored function; the inspector's freeze/step gates start open. There is
 * no MSI-X (vectors always read NO_VECTOR) and no VIRTIO_F_NOTIFICATION_DATA, so there are no
 * vectors or notify data to keep.
 *
 * readFunctionState() checks a state from a file against the function it is restored into,
 * field by field and for consistency between fields, so a bad one is a FunctionStateError
 * before anything changes.
 */
import { DeviceStatus, Feature, hasFeature } from '../constants.ts';
import { readEngineState, type QueueEngineState } from '../queue/queue-state.ts';
import { isValidQueueSize } from './common-cfg.ts';
import { StateReader } from '../state/state-reader.ts';
import type { JsonValue } from '../state/state-reader.ts';

export const FUNCTION_STATE_FORMAT = 'virtio-pci-function';
export const FUNCTION_STATE_VERSION = 1;

/** device_status bits that can be set: the driver's, and DEVICE_NEEDS_RESET (§2.1). */
const STATUS_BITS =
  DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK | DeviceStatus.FAILED | DeviceStatus.DEVICE_NEEDS_RESET;
const U16 = 0xffff;
const U32 = 0xffffffff;
/** Function names are short ("virtio-blk"). */
const MAX_NAME = 100;

/** A 64-bit queue address as the driver wrote it: [low, high] 32-bit halves. */
export type AddressPair = readonly [number, number];

export type QueueRegistersState = {
  readonly maxSize: number;
  /** queue_size as presented, and the last value written (which may be invalid). */
  readonly size: number;
  readonly sizeWritten: number;
  readonly enabled: boolean;
  readonly desc: AddressPair;
  readonly driver: AddressPair;
  readonly device: AddressPair;
  /** The live engine: present exactly when the queue is enabled. */
  readonly engine: QueueEngineState | null;
};

/** The VIRTIO_PCI_CAP_PCI_CFG window's driver-writable fields (§4.1.4.9). */
export type PciCfgWindowState = {
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
  readonly data: number;
};

export type FunctionState = {
  readonly format: typeof FUNCTION_STATE_FORMAT;
  readonly version: typeof FUNCTION_STATE_VERSION;
  /** Which function this was (checked on restore, with the device id and offered features). */
  readonly name: string;
  readonly deviceId: number;
  readonly offeredFeatures: string;
  readonly status: number;
  /** The device was handed a context at DRIVER_OK (and no reset since). */
  readonly activated: boolean;
  readonly acceptedFeatures: string;
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  /** driver_feature windows 0 and 1 as written so far. */
  readonly driverFeatures: readonly [number, number];
  readonly queueSelect: number;
  readonly isr: number;
  readonly configGeneration: number;
  /** Device config changed since the driver last read it (config_generation bumps at the next read). */
  readonly configPending: boolean;
  readonly pciCfg: PciCfgWindowState;
  readonly queues: readonly QueueRegistersState[];
  /** The device's own state (its descriptor's hooks), null for a device without hooks. */
  readonly device: JsonValue;
};

/** What a state must match: the function it is restored into. */
export interface FunctionIdentity {
  readonly name: string;
  readonly deviceId: number;
  readonly offeredFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
}

/** A checked state: FunctionState with its bigints parsed, and the device's part still unread. */
export interface CheckedFunctionState extends Omit<FunctionState, 'offeredFeatures' | 'acceptedFeatures' | 'device'> {
  readonly acceptedFeatures: bigint;
  readonly device: StateReader;
}

function readPair(r: StateReader): AddressPair {
  const [lo, hi] = r.tuple(2).map((v) => v.int(0, U32));
  return [lo, hi];
}

function readQueue(r: StateReader, maxSize: number, packed: boolean): QueueRegistersState {
  r.at('maxSize').int(maxSize, maxSize);
  // What queue_size presents is always one the driver may choose (common-cfg.ts).
  const size = r.at('size').int(1, maxSize);
  if (!isValidQueueSize(size, maxSize, packed)) r.at('size').fail(`${size} is not a valid size for a ${packed ? 'packed' : 'split'} queue of at most ${maxSize}`);
  const enabled = r.at('enabled').bool();
  const engine = r.optional('engine');
  if (enabled !== (engine !== undefined)) r.fail(enabled ? 'enabled but no engine state' : 'an engine state but not enabled');
  return {
    maxSize,
    size,
    sizeWritten: r.at('sizeWritten').int(0, U16),
    enabled,
    desc: readPair(r.at('desc')),
    driver: readPair(r.at('driver')),
    device: readPair(r.at('device')),
    engine: engine ? readEngineState(engine, packed ? 'packed' : 'split', size) : null,
  };
}

/** Read `value` as a state of the function `fn` is; throws FunctionStateError naming the first problem. */
export function readFunctionState(value: unknown, fn: FunctionIdentity): CheckedFunctionState {
  const r = StateReader.root(value, fn.name);
  r.at('format').literal(FUNCTION_STATE_FORMAT);
  if (r.at('version').int(0, U32) !== FUNCTION_STATE_VERSION) r.at('version').fail(`version ${FUNCTION_STATE_VERSION} is the only one known`);
  const name = r.at('name').string(MAX_NAME);
  if (name !== fn.name) r.at('name').fail(`saved from "${name}", restored into "${fn.name}"`);
  r.at('deviceId').int(fn.deviceId, fn.deviceId);
  const offered = r.at('offeredFeatures').u64();
  if (offered !== fn.offeredFeatures) {
    r.at('offeredFeatures').fail(`saved offering 0x${offered.toString(16)}, this function offers 0x${fn.offeredFeatures.toString(16)} (other options?)`);
  }

  const status = r.at('status').int(0, 0xff);
  if (status & ~STATUS_BITS) r.at('status').fail(`0x${status.toString(16)} has bits no one sets`);
  const featuresOk = (status & DeviceStatus.FEATURES_OK) !== 0;
  const accepted = r.at('acceptedFeatures').u64();
  if (featuresOk && ((accepted & ~fn.offeredFeatures) !== 0n || !hasFeature(accepted, Feature.VIRTIO_F_VERSION_1))) {
    r.at('acceptedFeatures').fail(`0x${accepted.toString(16)} is not a set of offered features with VERSION_1`);
  }
  if (!featuresOk && accepted !== 0n) r.at('acceptedFeatures').fail('features accepted without FEATURES_OK');
  const activated = r.at('activated').bool();
  const driverOk = (status & DeviceStatus.DRIVER_OK) !== 0;
  const needsReset = (status & DeviceStatus.DEVICE_NEEDS_RESET) !== 0;
  // Activation happens at DRIVER_OK with FEATURES_OK unless the device already needs a reset.
  if (activated && !(driverOk && featuresOk)) r.at('activated').fail('active without DRIVER_OK and FEATURES_OK');
  if (!activated && driverOk && featuresOk && !needsReset) r.at('activated').fail('DRIVER_OK without an active device');

  const packed = hasFeature(accepted, Feature.VIRTIO_F_RING_PACKED);
  const queueStates = r.at('queues').items(fn.queueMaxSizes.length);
  if (queueStates.length !== fn.queueMaxSizes.length) r.at('queues').fail(`${queueStates.length} queues, this function has ${fn.queueMaxSizes.length}`);
  const queues = queueStates.map((q, i) => readQueue(q, fn.queueMaxSizes[i]!, packed));
  if (!featuresOk && queues.some((q) => q.enabled)) r.at('queues').fail('a queue enabled before FEATURES_OK');

  const [window0, window1] = r.at('driverFeatures').tuple(2).map((v) => v.int(0, U32));
  const pciCfg = r.at('pciCfg');
  return {
    format: FUNCTION_STATE_FORMAT,
    version: FUNCTION_STATE_VERSION,
    name,
    deviceId: fn.deviceId,
    status,
    activated,
    acceptedFeatures: accepted,
    deviceFeatureSelect: r.at('deviceFeatureSelect').int(0, U32),
    driverFeatureSelect: r.at('driverFeatureSelect').int(0, U32),
    driverFeatures: [window0, window1],
    queueSelect: r.at('queueSelect').int(0, U16),
    isr: r.at('isr').int(0, 3),
    configGeneration: r.at('configGeneration').int(0, 0xff),
    configPending: r.at('configPending').bool(),
    pciCfg: {
      bar: pciCfg.at('bar').int(0, 0xff),
      offset: pciCfg.at('offset').int(0, U32),
      length: pciCfg.at('length').int(0, U32),
      data: pciCfg.at('data').int(0, U32),
    },
    queues,
    device: r.at('device'),
  };
}

/** FunctionState is plain JSON by construction: this line stops compiling if a field is not. */
export const FUNCTION_STATE_IS_JSON: FunctionState extends JsonValue ? true : never = true;
