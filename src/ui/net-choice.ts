/**
 * Which network the page gives the VM, from its URL and from what the server that served it
 * speaks. `npm start`'s server says so in a response header (NET_HEADER) on every page it
 * serves; a static host (GitHub Pages, `python3 -m http.server`) sends none, so there is no
 * relay to reach and the default becomes `fetch` (guest HTTP through the page's fetch()).
 */
import type { NetMode } from '../vm/protocol.ts';

/** Response header listing the uplinks the serving host offers, e.g. "relay, wisp". */
export const NET_HEADER = 'X-Virtio-Lab-Net';

export const NET_MODES: readonly NetMode[] = ['relay', 'wisp', 'fetch', 'none'];

export type NetChoice =
  | { mode: 'none' }
  | { mode: 'fetch' }
  | { mode: 'relay'; relayUrl: string }
  | { mode: 'wisp'; wispUrl: string }
  /** The URL asked for something unusable: the VM runs without a NIC and the page says why. */
  | { mode: 'invalid'; reason: string };

/** The uplinks named in a NET_HEADER value; null when the header is absent (a static host). */
export function serverNetModes(header: string | null): Set<string> | null {
  if (header === null) return null;
  // Bounded: a header value is at most a few KiB; only known names are kept.
  return new Set(header.split(',').map((s) => s.trim().toLowerCase()).filter((s) => (NET_MODES as readonly string[]).includes(s)));
}

/** A ws:// or wss:// URL, or null. */
function webSocketUrl(text: string, base: string): string | null {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    return null;
  }
  return url.protocol === 'ws:' || url.protocol === 'wss:' ? url.href : null;
}

/**
 * `?net=relay|wisp|fetch|none`; `?room=NAME` and `?relay=ws://…` for the relay (a relay bound
 * beyond loopback also gets the page's `?token=`); `?wisp=wss://…` for wisp (default: the
 * serving host's `/wisp/` when it offers one). No `?net=`: relay when the host offers one,
 * else fetch. `pageUrl` is the page's own address: the relay and wisp endpoints are relative
 * to it, so a lab served under a sub-path behind a proxy finds them there.
 */
export function chooseNet(pageUrl: string, offered: Set<string> | null): NetChoice {
  const url = new URL(pageUrl);
  const params = url.searchParams;
  const wsBase = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname.replace(/[^/]*$/, '')}`;
  const asked = params.get('net');
  const mode = asked ?? (offered?.has('relay') ? 'relay' : 'fetch');
  switch (mode) {
    case 'none':
      return { mode: 'none' };
    case 'fetch':
      return { mode: 'fetch' };
    case 'relay': {
      const given = params.get('relay');
      if (given) {
        const relayUrl = webSocketUrl(given, wsBase);
        return relayUrl ? { mode: 'relay', relayUrl } : { mode: 'invalid', reason: `?relay=${given} is not a ws:// or wss:// URL` };
      }
      const room = params.get('room') || 'lab';
      const token = params.get('token');
      return { mode: 'relay', relayUrl: `${wsBase}relay/${encodeURIComponent(room)}${token ? `?token=${encodeURIComponent(token)}` : ''}` };
    }
    case 'wisp': {
      const given = params.get('wisp');
      if (!given) {
        if (offered?.has('wisp')) return { mode: 'wisp', wispUrl: `${wsBase}wisp/` };
        return { mode: 'invalid', reason: '?net=wisp needs a server: add &wisp=wss://…' };
      }
      const wispUrl = webSocketUrl(given, wsBase);
      return wispUrl ? { mode: 'wisp', wispUrl } : { mode: 'invalid', reason: `?wisp=${given} is not a ws:// or wss:// URL` };
    }
    default:
      return { mode: 'invalid', reason: `unknown ?net=${mode.slice(0, 40)} (relay, wisp, fetch or none)` };
  }
}
