/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as ext4's metadata checksums use it. */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * The running CRC over `bytes` from state `crc`, with no final inversion: ext4 (and
 * e2fsprogs' ext2fs_crc32c_le) store this raw state, started from ~0.
 */
export function crc32cRaw(crc: number, bytes: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** The standard CRC-32C of `bytes` (initial ~0, final inversion): "123456789" → 0xE3069283. */
export function crc32c(bytes: Uint8Array): number {
  return ~crc32cRaw(0xffffffff, bytes) >>> 0;
}
