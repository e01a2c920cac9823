import { describe, expect, it } from 'vitest';
import { guestTimed, parseGuestTimed } from './tcp-endpoint.ts';

describe('guest-timed transfers', () => {
  it('reads the status and the uptime difference, not the echoed command line', () => {
    const cmd = guestTimed('nc 10.0.2.2 4000 </dev/null >/dev/null');
    // A serial console echoes the command first: its "@timed $s …" must not parse.
    expect(parseGuestTimed(`${cmd}\r\n@timed 0 812.40 814.65\r\n`)).toEqual({ status: 0, seconds: expect.closeTo(2.25, 9) });
    expect(parseGuestTimed('@timed 1 10.00 10.50\n')).toEqual({ status: 1, seconds: 0.5 });
  });

  it('is undefined when the command never reached its end line', () => {
    expect(parseGuestTimed(guestTimed('nc 10.0.2.2 4000'))).toBeUndefined();
    expect(parseGuestTimed('nc: can\'t connect to remote host\n')).toBeUndefined();
  });
});
