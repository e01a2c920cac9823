/**
 * The frame link's control messages: WebSocket text messages (the relay and every client
 * ignored text before, so peers that never send them keep the plain one-frame-per-message
 * wire; the relay sends text only to a client that sent some first).
 *
 *   "virtio-lab rx-tcp4 <N>"   client → relay: this port accepts TCP/IPv4 super-segments of
 *                              up to N bytes (Ethernet header included) as single binary
 *                              messages; "… 0": it no longer does (large receive went off).
 *   "virtio-lab tx-tcp4 <N>"   client → relay: this port would send super-segments of up to N
 *                              bytes; relay → client, the answer: it may, of up to N bytes
 *                              (0: it may not). Until the answer it sends MTU frames only.
 *
 * A super-segment is an untagged Ethernet/IPv4 (no IP options) frame longer than the MTU
 * frame carrying one TCP segment with flags ACK or ACK|PSH, correct IPv4 and TCP checksums,
 * and in the urgent pointer (URG is not set, so TCP gives the field no meaning) the MSS the
 * receiver should cut it at: the guest's gso_size.
 */

/** The message's fixed start; anything else in a text message is not a hello. */
export const LINK_HELLO_PREFIX = 'virtio-lab rx-tcp4 ';
/** The start of the hello about super-segments toward the relay. */
export const TX_HELLO_PREFIX = 'virtio-lab tx-tcp4 ';
/** Longest hello read: the prefix and up to 5 digits. Longer text is refused unparsed. */
export const LINK_HELLO_MAX_CHARS = LINK_HELLO_PREFIX.length + 5;
/** Largest super-segment a hello may offer: an Ethernet header and a 64 KiB IPv4 datagram. */
export const SUPER_SEGMENT_MAX_FRAME = 14 + 65535;
/** Smallest offer that means anything: longer than an MTU-1500 frame with a VLAN tag. */
export const SUPER_SEGMENT_MIN_OFFER = 1519;

/** The hello for an offer of `maxFrameBytes` (0 withdraws); `prefix` picks rx (default) or tx. */
export function formatLinkHello(maxFrameBytes: number, prefix = LINK_HELLO_PREFIX): string {
  if (maxFrameBytes !== 0 && !validOffer(maxFrameBytes)) throw new RangeError(`link hello: ${maxFrameBytes} is not a super-segment size`);
  return `${prefix}${maxFrameBytes}`;
}

/**
 * The offer a text message makes: N, 0 for a withdrawal, or undefined when it is not a
 * well-formed hello with this prefix (rx by default; too long, other text, N out of
 * [SUPER_SEGMENT_MIN_OFFER, SUPER_SEGMENT_MAX_FRAME]). Work: at most LINK_HELLO_MAX_CHARS
 * characters looked at.
 */
export function parseLinkHello(text: string, prefix = LINK_HELLO_PREFIX): number | undefined {
  if (text.length > LINK_HELLO_MAX_CHARS || !text.startsWith(prefix)) return undefined;
  const digits = text.slice(prefix.length);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(digits)) return undefined;
  const n = Number(digits);
  return n === 0 || validOffer(n) ? n : undefined;
}

function validOffer(n: number): boolean {
  return Number.isInteger(n) && n >= SUPER_SEGMENT_MIN_OFFER && n <= SUPER_SEGMENT_MAX_FRAME;
}
