/**
 * run() over the virtio-console port in Chromium: byte-exact output, nothing of it on the
 * serial console or in the terminal, timeouts that leave the next command working, and the
 * serial fallback with ?console=off.
 */
import { outputBytes } from '../src/vm/console-session-agent.ts';
import { expect, test } from './fixtures.ts';

// Starts from a first visit's boot state (e2e/fixtures.ts): restored, not booted.
test.use({ seedBootStates: true });

const BOOT = '/?disk=none&net=none';
const run = (page: import('@playwright/test').Page, cmd: string, timeoutMs = 30_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

test('run() goes over the port: exact bytes, stderr interleaved, nothing in serialLog() or the terminal', async ({ page }) => {
  await page.goto(BOOT);
  await page.evaluate(() => window.virtioLab.ready);
  expect(await page.evaluate(() => window.virtioLab.serialLog())).toMatch(/run\(\) agent on \/dev\/vport\d+p1/);
  const logBefore = await page.evaluate(() => window.virtioLab.serialLog());

  expect(await run(page, 'echo token-Q7; echo err-Q7 >&2; echo after-Q7; exit 4')).toEqual({ output: 'token-Q7\nerr-Q7\nafter-Q7\n', status: 4 });
  // Every byte 1..255, checked one by one: UTF-8 where valid, else U+DC80+byte (surrogateescape).
  const octal = Array.from({ length: 255 }, (_, i) => `\\${(i + 1).toString(8).padStart(3, '0')}`).join('');
  const all = await run(page, `printf '${octal}'`);
  expect(all.status).toBe(0);
  expect(all.output.length).toBe(255);
  for (let b = 1; b <= 255; b++) expect(all.output.charCodeAt(b - 1), `byte ${b}`).toBe(b < 0x80 ? b : 0xdc00 + b);
  expect([...outputBytes(all.output)]).toEqual(Array.from({ length: 255 }, (_, i) => i + 1));
  expect(await run(page, 'printf "ünï €\\r\\n"')).toEqual({ output: 'ünï €\r\n', status: 0 });

  const logAfter = await page.evaluate(() => window.virtioLab.serialLog());
  // Nothing of run()'s: the log only grew by what the kernel printed meanwhile, if anything
  // (on a loaded machine: "hrtimer: interrupt took … ns").
  expect(logAfter.startsWith(logBefore)).toBe(true);
  const added = logAfter.slice(logBefore.length).split(/\r?\n/).filter((line) => line.trim() !== '');
  for (const line of added) expect(line).toMatch(/^\[\s*\d+\.\d+\] /);
  expect(logAfter).not.toContain('Q7');
  await expect(page.locator('.xterm-rows')).toContainText('virtio-lab');
  await expect(page.locator('.xterm-rows')).not.toContainText('Q7');
  const stats = await page.evaluate(() => window.virtioLab.stats());
  const console = stats.devices.find((d) => d.name === 'virtio-console');
  expect(console?.extra.txBytes).toBeGreaterThanOrEqual(255 + 'token-Q7\nerr-Q7\nafter-Q7\n'.length);
});

test('a timed-out command is killed and the next command runs, while the user types in the terminal', async ({ page }) => {
  await page.goto(BOOT);
  await page.evaluate(() => window.virtioLab.ready);
  // Caught at once: it rejects while the keyboard is still typing.
  const slow = run(page, 'sleep 300 & while :; do echo tick; sleep 0.05; done', 1500).then(
    () => new Error('resolved'),
    (e: Error) => e,
  );
  // The learner types meanwhile: their line and run() do not garble each other.
  await page.getByTestId('terminal').click();
  await page.keyboard.type('echo typed-$((6*7))');
  await page.keyboard.press('Enter');
  expect((await slow).message).toMatch(/timed out after 1500 ms/);
  // Killed at once; the dead may linger as zombies until init reaps them, so look a few times.
  const gone = 'for i in $(seq 20); do pidof sleep >/dev/null || break; sleep 0.1; done; pidof sleep || echo none';
  expect(await run(page, `echo next; ${gone}`)).toEqual({ output: 'next\nnone\n', status: 0 });
  await expect.poll(() => page.evaluate(() => window.virtioLab.serialLog())).toContain('typed-42');
  expect(await page.evaluate(() => window.virtioLab.serialLog())).not.toContain('tick');
});

test('?console=off: run() falls back to the serial console with the same contract', async ({ page }) => {
  await page.goto(`${BOOT}&console=off`);
  await page.evaluate(() => window.virtioLab.ready);
  const log = await page.evaluate(() => window.virtioLab.serialLog());
  expect(log).toContain('no virtio-console port org.virtio-lab.run');
  expect(await run(page, 'echo out-S; echo err-S >&2; (exit 3)')).toEqual({ output: 'out-S\nerr-S\n', status: 3 });
  expect(await page.evaluate(() => window.virtioLab.serialLog())).toContain('__VL_S');
  const status = await page.evaluate(() => window.virtioLab.status());
  expect(status.devices.map((d) => d.name)).not.toContain('virtio-console');
});
