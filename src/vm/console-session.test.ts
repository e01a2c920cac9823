import { describe, expect, it, vi } from 'vitest';
import { ConsoleSession, READY_MARKER } from './console-session.ts';

const enc = new TextEncoder();

/** A stand-in shell: echoes what is typed (like a tty) and runs a few known commands. */
function fakeShell(opts: { chunk?: number; commands?: Record<string, [string, number]> } = {}) {
  const commands = opts.commands ?? {};
  const typed: string[] = [];
  let session!: ConsoleSession;
  const emit = (text: string) => {
    const bytes = enc.encode(text);
    const step = opts.chunk ?? bytes.length;
    for (let i = 0; i < bytes.length; i += step) session.feed(bytes.subarray(i, i + step));
  };
  const send = (line: string) => {
    typed.push(line);
    queueMicrotask(() => {
      emit(line.replace(/\n/g, '\r\n')); // the tty's echo
      const m = /^ echo "__VL_S""([^"]+)"; eval '((?:[^']|'\\'')*)'; echo "__VL_E""([^"]+):\$\?"\n$/.exec(line);
      if (!m) return;
      const cmd = m[2].replace(/'\\''/g, "'");
      const known = commands[cmd];
      if (!known) return; // a command that never finishes
      emit(`__VL_S${m[1]}\r\n${known[0].replace(/\n/g, '\r\n')}__VL_E${m[3]}:${known[1]}\r\nlab:/# `);
    });
  };
  session = new ConsoleSession(send);
  return { session, typed, emit };
}

describe('ConsoleSession', () => {
  it('is ready only at the prompt after the ready marker', async () => {
    const { session, emit } = fakeShell();
    let ready = false;
    void session.ready.then(() => (ready = true));
    emit('Linux version 6.1\r\nlab:/# '); // a prompt before the marker does not count
    await Promise.resolve();
    expect(ready).toBe(false);
    emit(`${READY_MARKER}\r\n`);
    await Promise.resolve();
    expect(ready).toBe(false);
    emit('lab:/# ');
    await session.ready;
    expect(ready).toBe(true);
  });

  it('returns one command output and status, even fed a byte at a time', async () => {
    const { session } = fakeShell({
      chunk: 1,
      commands: { 'uname -r': ['6.1.176\n', 0], false: ['', 1], 'echo ünï': ['ünï\n', 0] },
    });
    expect(await session.run('uname -r')).toEqual({ output: '6.1.176\n', status: 0 });
    expect(await session.run('false')).toEqual({ output: '', status: 1 });
    expect(await session.run('echo ünï')).toEqual({ output: 'ünï\n', status: 0 });
  });

  it('never matches its own echoed command line', async () => {
    const { session, typed } = fakeShell({ commands: { 'echo hi': ['hi\n', 0] } });
    const r = await session.run('echo hi');
    expect(r.output).toBe('hi\n');
    // The typed line holds the marker split in two, so its echo cannot end the wait.
    expect(typed[0]).not.toMatch(/__VL_S[a-z0-9_]+__;/);
  });

  it('quotes commands so quotes, comments and & survive', async () => {
    const cmd = `echo 'it''s' "a b" & wait # trailing comment`;
    const { session, typed } = fakeShell({ commands: { [cmd]: ['its a b\n', 0] } });
    expect(await session.run(cmd)).toEqual({ output: 'its a b\n', status: 0 });
    expect(typed[0]).toContain(`eval 'echo '\\''it'\\'''\\''s'\\'' "a b" & wait # trailing comment'`);
  });

  it('queues concurrent runs in order', async () => {
    const { session, typed } = fakeShell({ commands: { a: ['A\n', 0], b: ['B\n', 3] } });
    const [ra, rb] = await Promise.all([session.run('a'), session.run('b')]);
    expect(ra).toEqual({ output: 'A\n', status: 0 });
    expect(rb).toEqual({ output: 'B\n', status: 3 });
    expect(typed).toHaveLength(2);
  });

  it('times out, interrupts the command with ^C, and stays usable', async () => {
    vi.useFakeTimers();
    try {
      const { session, typed } = fakeShell({ commands: { ok: ['fine\n', 0] } });
      const slow = session.run('sleep 100', { timeoutMs: 1000 });
      const caught = slow.catch((e: Error) => e);
      await vi.advanceTimersByTimeAsync(1001);
      expect(((await caught) as Error).message).toMatch(/timed out after 1000 ms/);
      expect(typed).toContain('\x03');
      const ok = session.run('ok');
      await vi.advanceTimersByTimeAsync(1);
      expect(await ok).toEqual({ output: 'fine\n', status: 0 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('fail() rejects ready, pending and later runs', async () => {
    const { session } = fakeShell();
    const pending = session.run('never');
    await Promise.resolve();
    session.fail(new Error('worker crashed'));
    await expect(session.ready).rejects.toThrow('worker crashed');
    await expect(pending).rejects.toThrow('worker crashed');
    await expect(session.run('x')).rejects.toThrow('worker crashed');
  });

  it('keeps the serial log, bounded', () => {
    const s = new ConsoleSession(() => {}, 1000);
    s.feed(enc.encode('x'.repeat(998)));
    s.feed(enc.encode('tail'));
    expect(s.log().length).toBeLessThanOrEqual(1000);
    expect(s.log().endsWith('tail')).toBe(true);
  });
});
