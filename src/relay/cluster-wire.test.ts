import { describe, expect, it } from 'vitest';
import { decodeBatch, decodeControl, encodeBatch, encodeControl, frameSubject, MAX_BATCH_FRAMES, MAX_CONTROL_BYTES } from './cluster-wire.ts';

const id = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const frame = new Uint8Array(60).fill(0xab);
const enc = (s: string) => new TextEncoder().encode(s);

describe('cluster wire (what other relays send is checked)', () => {
  it('round-trips a batch of frames with its sender, as copies', () => {
    const other = new Uint8Array(1514).fill(7);
    const msg = encodeBatch(id, [frame, other]);
    const d = decodeBatch(msg, 1514);
    expect(d).toEqual({ from: '0102030405060708', frames: [frame, other] });
    msg[20] = 0;
    if ('frames' in d) expect(d.frames[0][9]).toBe(0xab);
  });

  it('drops the whole message on runts, oversized frames, bad lengths, too many frames and unknown versions', () => {
    expect(decodeBatch(encodeBatch(id, [new Uint8Array(13)]), 1514)).toEqual({ drop: 'runt' });
    expect(decodeBatch(encodeBatch(id, [frame, new Uint8Array(13)]), 1514)).toEqual({ drop: 'malformed' });
    expect(decodeBatch(encodeBatch(id, [frame, new Uint8Array(1515)]), 1514)).toEqual({ drop: 'malformed' });
    const cut = encodeBatch(id, [frame, frame]);
    expect(decodeBatch(cut.subarray(0, cut.length - 1), 1514)).toEqual({ drop: 'malformed' });
    expect(decodeBatch(encodeBatch(id, Array.from({ length: MAX_BATCH_FRAMES + 1 }, () => frame)), 1514)).toEqual({ drop: 'too-many' });
    expect(decodeBatch(encodeBatch(id, Array.from({ length: 30 }, () => new Uint8Array(1514))), 1514)).toEqual({ drop: 'too-big' });
    const v1 = encodeBatch(id, [frame]);
    v1[0] = 1;
    expect(decodeBatch(v1, 1514)).toEqual({ drop: 'version' });
  });

  it('hex-encodes room names in subjects (a room may contain dots)', () => {
    expect(frameSubject('a.b', 'all')).toBe('vlab.frame.612e62.all');
  });

  it('accepts well-formed control messages and nothing else', () => {
    const relay = '0102030405060708';
    expect(decodeControl(encodeControl({ t: 'hb', relay }))).toEqual({ t: 'hb', relay });
    expect(decodeControl(encodeControl({ t: 'left', relay, room: 'class.1', mac: '52:54:00:00:00:01' }))).toEqual({
      t: 'left',
      relay,
      room: 'class.1',
      mac: '52:54:00:00:00:01',
    });
    for (const bad of [
      'not json',
      '[]',
      'null',
      '{"t":"hb"}',
      '{"t":"hb","relay":"XYZ"}',
      `{"t":"left","relay":"${relay}","room":"zz","mac":"52:54:00:00:00:01"}`,
      `{"t":"left","relay":"${relay}","room":"6162","mac":"52:54:00:00:01"}`,
      `{"t":"nuke","relay":"${relay}"}`,
    ]) {
      expect(decodeControl(enc(bad)), bad).toBeNull();
    }
    expect(decodeControl(enc(`{"t":"hb","relay":"${relay}","pad":"${'x'.repeat(MAX_CONTROL_BYTES)}"}`))).toBeNull();
    expect(decodeControl(new Uint8Array([0xff, 0xfe]))).toBeNull();
  });
});
