/**
 * zstd in Node: @bokuweb/zstd-wasm's CommonJS entry, which reads its wasm with fs (its ESM
 * build calls `require` and fails under Node). The browser has zstd-browser.ts.
 */
import { createRequire } from 'node:module';
import { boundedZstd, type ZstdCodec, type ZstdWasmModule } from './zstd.ts';

let loaded: Promise<ZstdCodec> | undefined;

/** The process's codec, the wasm instantiated on first use. */
export function loadZstd(): Promise<ZstdCodec> {
  loaded ??= (async () => {
    const lib = createRequire(import.meta.url)('@bokuweb/zstd-wasm') as ZstdWasmModule & { init(): Promise<void> };
    await lib.init();
    return boundedZstd(lib);
  })();
  return loaded;
}
