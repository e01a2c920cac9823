/**
 * The serial console in xterm.js: fills its pane, follows resizes, Ctrl+Shift+C / Ctrl+Shift+V
 * (and the browser's own paste) for the clipboard; plain Ctrl+C goes to the guest.
 */
import { useEffect, useRef } from 'react';
import { Terminal as XTerm } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import type { VmClient } from './vm-client.ts';

export function Terminal({ client, boot }: { client: VmClient; boot: number }) {
  const host = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = host.current!;
    const term = new XTerm({
      convertEol: false,
      cursorBlink: true,
      scrollback: 10_000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace',
      fontSize: 14,
      lineHeight: 1.2, // at 1.0 the DOM renderer clips underscores
      theme: { background: '#101418' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    const enc = new TextEncoder();
    // Replay what this boot printed before the terminal existed (e.g. after a remount).
    term.write(client.session.log());
    const offSerial = client.onSerial((bytes) => term.write(bytes));
    const onData = term.onData((data) => client.type(enc.encode(data)));
    term.attachCustomKeyEventHandler((ev) => {
      if (ev.type !== 'keydown' || !ev.ctrlKey || !ev.shiftKey) return true;
      if (ev.code === 'KeyC') {
        const sel = term.getSelection();
        if (sel) void navigator.clipboard?.writeText(sel);
        return false;
      }
      if (ev.code === 'KeyV') {
        void navigator.clipboard?.readText().then((t) => term.paste(t));
        return false;
      }
      return true;
    });
    const refit = () => {
      try {
        fit.fit();
      } catch {
        /* hidden pane: nothing to measure */
      }
    };
    const ro = new ResizeObserver(refit);
    ro.observe(el);
    refit();
    term.focus();
    return () => {
      ro.disconnect();
      onData.dispose();
      offSerial();
      term.dispose();
    };
  }, [client, boot]);

  return <div className="terminal" ref={host} data-testid="terminal" />;
}
