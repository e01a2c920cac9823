import type { ConfigField } from '../virtio/inspect/types.ts';

/** One decoded config-space field for the inspector; `section` is the spec's (e.g. "5.2.4"). */
export const configField = (name: string, value: string | number, section: string): ConfigField => ({ name, value: String(value), section });
