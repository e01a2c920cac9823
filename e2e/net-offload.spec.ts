/**
 * Two tabs with different offload sets in one relay room: one offers GUEST_TSO4 (large
 * receive), the other is opened with `?guest-tso=0`. TCP both ways between them, md5 checked:
 * super-frames stay inside the tab that negotiated them; a TSO frame leaves either tab whole
 * (a super-segment) and the relay cuts it into MTU frames for the tab that did not offer them.
 */
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';

const run = (page: Page, cmd: string, timeoutMs = 120_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

async function bootWithLease(page: Page, query: string): Promise<string> {
  await page.goto(`/?disk=none${query}`);
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/, { timeout: 60_000 });
  const ip = (await page.getByTestId('net-ip').textContent())!;
  await run(page, `for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
  return ip;
}

/** The NIC's negotiated features as the guest's driver reports them (a bit string, bit 0 first). */
async function guestTso4(page: Page): Promise<boolean> {
  const bits = (await run(page, 'cat /sys/class/net/eth0/device/features')).output.trim();
  return bits[7] === '1'; // VIRTIO_NET_F_GUEST_TSO4
}

const netExtra = (page: Page) => page.evaluate(async () => (await window.virtioLab.stats()).devices.find((d) => d.name === 'virtio-net')?.extra);

test('a tab with large receive and one without talk TCP both ways (md5)', async ({ context }) => {
  test.setTimeout(240_000);
  const lro = await context.newPage();
  const plain = await context.newPage();
  const ipLro = await bootWithLease(lro, '&room=e2e-offload');
  const ipPlain = await bootWithLease(plain, '&room=e2e-offload&guest-tso=0');
  expect(await guestTso4(lro)).toBe(true);
  expect(await guestTso4(plain)).toBe(false);

  // 4 MiB of the same bytes in both guests (a file each side can regenerate).
  const make = 'dd if=/dev/zero bs=64k count=64 2>/dev/null | tr "\\000" "\\141" > /tmp/d; seq 1 20000 >> /tmp/d; md5sum /tmp/d';
  const want = (await run(lro, make)).output.trim().split(' ')[0];
  expect((await run(plain, make)).output.trim().split(' ')[0]).toBe(want);

  // Each serves the file with busybox httpd; the other fetches it with wget (which ends at Content-Length).
  for (const page of [lro, plain]) expect((await run(page, 'httpd -p 8080 -h /tmp && echo up')).output).toContain('up');
  for (const [from, to, fromIp] of [
    [plain, lro, ipPlain],
    [lro, plain, ipLro],
  ] as const) {
    const before = await netExtra(to);
    const got = await run(to, `rm -f /tmp/r; wget -q -O /tmp/r http://${fromIp}:8080/d && md5sum /tmp/r; ls -l /tmp/r`);
    expect(got.output.trim().split(' ')[0], `${from === lro ? 'large receive' : 'plain'} tab → the other:\n${got.output}`).toBe(want);
    const after = await netExtra(to);
    const d = (k: string) => (after?.[k] ?? 0) - (before?.[k] ?? 0);
    // Merged by the NIC, or sent whole by the other tab's NIC (its TSO frames as super-segments).
    const merged = d('rxLroPackets') + d('rxSuperSegments');
    console.log(`${to === lro ? 'large receive' : 'plain'} tab: ${d('rxFrames')} frames, ${d('rxLroPackets')} merged packets, ${d('rxSuperSegments')} super-segments`);
    if (to === lro) expect(merged).toBeGreaterThan(0);
    else expect(merged).toBe(0); // the switch cut the other's super-segments for it
  }
});
