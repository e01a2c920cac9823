import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LINK_HELLO_MAX_CHARS, LINK_HELLO_PREFIX, SUPER_SEGMENT_MAX_FRAME, SUPER_SEGMENT_MIN_OFFER, formatLinkHello, parseLinkHello } from './link-hello.ts';

describe('link hello', () => {
  it('round trips every valid offer and the withdrawal', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(0), fc.integer({ min: SUPER_SEGMENT_MIN_OFFER, max: SUPER_SEGMENT_MAX_FRAME })), (n) => {
        expect(parseLinkHello(formatLinkHello(n))).toBe(n);
      }),
    );
  });

  it('refuses offers outside the bounds, to format and to parse', () => {
    for (const n of [1, 1514, SUPER_SEGMENT_MIN_OFFER - 1, SUPER_SEGMENT_MAX_FRAME + 1, 99999]) {
      expect(() => formatLinkHello(n)).toThrow(RangeError);
      expect(parseLinkHello(`${LINK_HELLO_PREFIX}${n}`)).toBeUndefined();
    }
  });

  it('ignores malformed text', () => {
    const bad = ['', 'hello', LINK_HELLO_PREFIX, `${LINK_HELLO_PREFIX}065549`, `${LINK_HELLO_PREFIX}6e4`, `${LINK_HELLO_PREFIX}65549 `, `${LINK_HELLO_PREFIX}-1`, `virtio-lab rx-tcp6 65549`, `${LINK_HELLO_PREFIX}${'9'.repeat(1000)}`];
    for (const t of bad) expect(parseLinkHello(t)).toBeUndefined();
  });

  it('never throws and accepts nothing longer than its bound', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ maxLength: 10 }).map((s) => LINK_HELLO_PREFIX + s)), (t) => {
        const n = parseLinkHello(t);
        if (n !== undefined) {
          expect(t.length).toBeLessThanOrEqual(LINK_HELLO_MAX_CHARS);
          expect(n === 0 || (n >= SUPER_SEGMENT_MIN_OFFER && n <= SUPER_SEGMENT_MAX_FRAME)).toBe(true);
        }
      }),
    );
  });
});
