/**
 * The browser loader can only run in a page or worker, but whether Vite bundles it right can
 * be checked here: the wasm must come out as an asset that the chunk fetches by URL (a
 * package update that inlined it, or hid it from Vite, would break the worker at run time).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build, type Rollup } from 'vite';
import { expect, it } from 'vitest';

it('Vite bundles zstd-browser.ts with the zstd wasm as a hashed asset fetched by URL', async () => {
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    root: process.cwd(),
    build: { write: false, target: 'es2022', rollupOptions: { input: { zstd: 'src/vm/snapshot/zstd-browser.ts' }, preserveEntrySignatures: 'exports-only' } },
  });
  const outputs = (Array.isArray(result) ? result : [result as Rollup.RollupOutput]).flatMap((o) => o.output);
  const wasm = outputs.find((o): o is Rollup.OutputAsset => o.type === 'asset' && o.fileName.endsWith('.wasm'));
  const chunk = outputs.find((o): o is Rollup.OutputChunk => o.type === 'chunk' && o.isEntry);
  expect(wasm).toBeDefined();
  const packaged = readFileSync(path.join(path.dirname(createRequire(import.meta.url).resolve('@bokuweb/zstd-wasm')), 'zstd.wasm'));
  expect(Buffer.compare(Buffer.from(wasm!.source as Uint8Array), packaged)).toBe(0);
  expect(chunk!.code).toContain(`new URL(\`/${wasm!.fileName}\``);
  expect(chunk!.exports).toContain('loadZstd');
}, 30_000);
