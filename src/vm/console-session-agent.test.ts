import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ConsoleSession, READY_MARKER } from './console-session.ts';
import { decodeOutput, encodeRequest, outputBytes } from './console-session-agent.ts';
import { concatBytes } from '../devices/testing/equal-bytes.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const cat = (...parts: Uint8Array[]) => concatBytes(parts);

type Reply = { output: Uint8Array | string; status: number } | 'hang';

/**
 * A stand-in for the guest agent: parses L/X/K lines as guest/rootfs/usr/sbin/virtio-lab-agent
 * does and answers with the markers, in chunks of `chunk` bytes. Serial typing is recorded.
 */
function fakeAgent(commands: Record<string, Reply>, opts: { chunk?: number } = {}) {
  const typed: string[] = [];
  const requests: string[] = [];
  const session = new ConsoleSession((text) => typed.push(text));
  let lines: string[] = [];
  let inbox = '';
  const emit = (bytes: Uint8Array) => {
    const step = opts.chunk ?? bytes.length;
    for (let i = 0; i < bytes.length; i += step) session.agentData(bytes.subarray(i, i + step));
  };
  session.attachAgent((bytes) => {
    inbox += dec.decode(bytes);
    queueMicrotask(() => {
      let nl: number;
      while ((nl = inbox.indexOf('\n')) >= 0) {
        const line = inbox.slice(0, nl);
        inbox = inbox.slice(nl + 1);
        requests.push(line);
        if (line.startsWith('L')) lines.push(line.slice(1));
        if (line.startsWith('X') || line.startsWith('F')) {
          const id = line.slice(1);
          const cmd = lines.join('\n');
          lines = [];
          const reply = commands[cmd];
          emit(enc.encode(`\0__VL_S${id}\n`));
          if (reply === undefined || reply === 'hang') continue;
          const out = typeof reply.output === 'string' ? enc.encode(reply.output) : reply.output;
          emit(cat(out, enc.encode(`\0__VL_E${id}:${reply.status}\n`)));
        }
      }
    });
    return true;
  });
  return { session, typed, requests, emit };
}

describe('run() over the agent port', () => {
  it('returns output and status, types nothing into the serial console, even fed a byte at a time', async () => {
    const { session, typed } = fakeAgent({ 'uname -r': { output: '6.1.176\n', status: 0 }, 'echo ünï; exit 3': { output: 'ünï\n', status: 3 } }, { chunk: 1 });
    session.agentOpen(true);
    expect(session.usesAgent).toBe(true);
    expect(await session.run('uname -r')).toEqual({ output: '6.1.176\n', status: 0 });
    expect(await session.run('echo ünï; exit 3')).toEqual({ output: 'ünï\n', status: 3 });
    expect(typed).toEqual([]);
    expect(session.log()).toBe('');
  });

  it('sends a command of several lines as L lines, then X with a fresh id per request', async () => {
    const cmd = "cat > /tmp/f <<'EOF'\n  two spaces \\ and 'quotes'\nEOF\ncat /tmp/f";
    const { session, requests } = fakeAgent({ [cmd]: { output: 'x', status: 0 } });
    session.agentOpen(true);
    await session.run(cmd);
    await session.run(cmd);
    expect(requests.slice(0, 4)).toEqual(["Lcat > /tmp/f <<'EOF'", "L  two spaces \\ and 'quotes'", 'LEOF', 'Lcat /tmp/f']);
    const ids = requests.filter((r) => r.startsWith('X'));
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[0]).toMatch(/^X[A-Za-z0-9_]+$/);
    expect(dec.decode(encodeRequest('a\nb', 'id7'))).toBe('La\nLb\nXid7\n');
  });

  it("the lab's subshell requests go as F; a request without the option stays X", async () => {
    const { session, requests } = fakeAgent({ 'mount x': { output: '', status: 0 }, 'echo hi': { output: 'hi\n', status: 0 } });
    session.agentOpen(true);
    expect(await session.run('mount x', { subshell: true })).toEqual({ output: '', status: 0 });
    expect(await session.run('echo hi')).toEqual({ output: 'hi\n', status: 0 });
    expect(requests.filter((r) => !r.startsWith('L')).map((r) => r[0])).toEqual(['F', 'X']);
    expect(dec.decode(encodeRequest('a', 'id8', true))).toBe('La\nFid8\n');
  });

  it('keeps every byte 1..255 and invalid UTF-8 exact (surrogateescape), and output that looks like a marker', async () => {
    const all = Uint8Array.from({ length: 255 }, (_, i) => i + 1);
    const tricky = cat(enc.encode('a\0__VL_Enope:1\nb\0__VL_E'), Uint8Array.of(0xff, 0xc3, 0x28, 0xe2, 0x82), enc.encode('€\n'));
    const { session } = fakeAgent({ all: { output: all, status: 0 }, tricky: { output: tricky, status: 2 } }, { chunk: 7 });
    session.agentOpen(true);
    const r = await session.run('all');
    expect(r.output.length).toBe(255);
    for (let b = 1; b <= 255; b++) expect(r.output.charCodeAt(b - 1), `byte ${b}`).toBe(b < 0x80 ? b : 0xdc00 + b);
    expect([...outputBytes(r.output)]).toEqual([...all]);
    const t = await session.run('tricky');
    expect(t.status).toBe(2);
    expect([...outputBytes(t.output)]).toEqual([...tricky]);
    expect(t.output.endsWith('€\n')).toBe(true);
  });

  it("output full of this request's own end marker: taken as output unless 1–3 digits and LF follow", async () => {
    const { session, requests, emit } = fakeAgent({ spoof: 'hang' });
    session.agentOpen(true);
    const run = session.run('spoof');
    await vi.waitFor(() => expect(requests.some((r) => r.startsWith('X'))).toBe(true));
    const id = requests.find((r) => r.startsWith('X'))!.slice(1);
    const fake = `\0__VL_E${id}:`;
    // 50 000 candidates in one chunk (each once made a recursive call), then longer statuses.
    const output = `${fake}x`.repeat(50_000) + `${fake}1234\n${fake}\n${fake}99x\n`;
    emit(enc.encode(`${output}\0__VL_E${id}:255\n`));
    const r = await run;
    expect(r.status).toBe(255);
    expect(r.output).toBe(output);
  });

  it('decodes any bytes losslessly, and valid UTF-8 exactly as TextDecoder does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect([...outputBytes(decodeOutput(bytes))]).toEqual([...bytes]);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const bytes = enc.encode(text);
        expect(decodeOutput(bytes)).toBe(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('on timeout rejects, cancels in the guest, and a late chunk of the cancelled command never reaches the next', async () => {
    vi.useFakeTimers();
    try {
      const { session, requests, emit } = fakeAgent({ next: { output: 'mine\n', status: 0 } });
      session.agentOpen(true);
      const slow = session.run('sleep 100', { timeoutMs: 1000 }).catch((e: Error) => e);
      await vi.advanceTimersByTimeAsync(1001);
      expect(((await slow) as Error).message).toMatch(/timed out after 1000 ms/);
      const id = requests.find((r) => r.startsWith('X'))!.slice(1);
      expect(requests.at(-1)).toBe(`K${id}`);
      // The cancelled command's output and end marker arrive late, around the next request.
      emit(enc.encode('late output\n'));
      const next = session.run('next');
      emit(enc.encode(`more late\0__VL_E${id}:137\n`));
      await vi.advanceTimersByTimeAsync(1);
      expect(await next).toEqual({ output: 'mine\n', status: 0 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('falls back to the serial console while the port is closed, and a close mid-command rejects it', async () => {
    const { session, typed } = fakeAgent({ stuck: 'hang' });
    // Not open yet (older image, ?console=off, the agent not started): serial.
    void session.run('echo via-serial', { timeoutMs: 50 }).catch(() => undefined);
    await Promise.resolve();
    await Promise.resolve();
    expect(typed.some((t) => t.includes('via-serial'))).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    session.agentOpen(true);
    const pending = session.run('stuck');
    await new Promise((r) => setTimeout(r, 0));
    session.agentOpen(false);
    await expect(pending).rejects.toThrow(/closed the run\(\) port/);
    expect(session.usesAgent).toBe(false);
  });

  it('leaves ready and serialLog() to the serial console', async () => {
    const { session } = fakeAgent({ x: { output: 'port bytes\n', status: 0 } });
    session.feed(enc.encode(`boot\r\n${READY_MARKER}\r\nvirtio-lab:~# `));
    await session.ready;
    session.agentOpen(true);
    await session.run('x');
    expect(session.log()).toBe(`boot\r\n${READY_MARKER}\r\nvirtio-lab:~# `);
  });

  it('fail() rejects a run pending on the port', async () => {
    const { session } = fakeAgent({ stuck: 'hang' });
    session.agentOpen(true);
    const pending = session.run('stuck');
    await new Promise((r) => setTimeout(r, 0));
    session.fail(new Error('worker crashed'));
    await expect(pending).rejects.toThrow('worker crashed');
  });
});
