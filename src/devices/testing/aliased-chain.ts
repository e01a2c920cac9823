/**
 * The aliasing a hostile guest can do and the mock's allocator never produces: one chain in
 * an indirect table whose middle descriptors all name the same guest buffer. Built through the
 * DriverRing's table builders, so it works on split (§2.7.5.3) and packed (§2.8.7) rings alike.
 */
import type { DriverMock, DriverRing, RawBuffer, Submitted } from '../../virtio/testing/driver-mock.ts';

export interface AliasedIndirectSpec {
  /** Driver-readable buffers first (a request header, a control message), copied into fresh guest RAM. */
  head?: readonly Uint8Array[];
  /** Then `count` descriptors over [addr, +len), device-writable when `write`. */
  count: number;
  addr: number;
  len: number;
  write: boolean;
  /** Then fresh device-writable buffers of these lengths (a status byte), poisoned with 0xee. */
  tail?: readonly number[];
}

/**
 * Make the chain available (not kicked). Its `writable` lists the tail only: what the device
 * wrote through the aliases is not gathered back (up to size × 1 MiB of copies per chain).
 */
export function addAliasedIndirect(driver: DriverMock, q: DriverRing, spec: AliasedIndirectSpec): Submitted {
  const buffers: RawBuffer[] = [];
  for (const bytes of spec.head ?? []) {
    const addr = driver.buffers.alloc(bytes.length, 8);
    driver.memory.write(addr, bytes);
    buffers.push({ addr, len: bytes.length });
  }
  for (let k = 0; k < spec.count; k++) buffers.push({ addr: spec.addr, len: spec.len, write: spec.write });
  const tail = (spec.tail ?? []).map((len) => {
    const addr = driver.buffers.alloc(len, 8);
    driver.memory.bytes.fill(0xee, addr, addr + len);
    buffers.push({ addr, len, write: true });
    return { addr, len };
  });
  return q.addIndirectAt(q.writeTable(buffers), buffers.length, tail);
}
