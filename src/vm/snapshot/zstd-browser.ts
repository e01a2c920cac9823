/**
 * zstd in a page or a module worker: @bokuweb/zstd-wasm's web entry, its wasm fetched from
 * the URL Vite gives the asset (hashed, served like our other assets). Node has zstd-node.ts.
 */
import { compress, decompress, init } from '@bokuweb/zstd-wasm';
import { boundedZstd, type ZstdCodec } from './zstd.ts';

let loaded: Promise<ZstdCodec> | undefined;

/** The realm's codec, the wasm fetched and instantiated on first use. */
export function loadZstd(): Promise<ZstdCodec> {
  loaded ??= (async () => {
    await init();
    return boundedZstd({ compress, decompress });
  })();
  return loaded;
}
