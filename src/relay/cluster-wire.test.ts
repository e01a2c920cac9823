import { describe, expect, it } from 'vitest';
import { decodeControl, decodeFrame, encodeControl, encodeFrame, frameSubject, MAX_CONTROL_BYTES } from './cluster-wire.ts';

const id = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const frame = new Uint8Array(60).fill(0xab);
const enc = (s: string) => new TextEncoder().encode(s);

describe('cluster wire (what other relays send is checked)', () => {
  it('round-trips a frame with its sender, as a copy', () => {
    const msg = encodeFrame(id, frame);
    const d = decodeFrame(msg, 1514);
    expect(d).toEqual({ from: '0102030405060708', frame });
    if ('frame' in d) {
      msg[20] = 0;
      expect(d.frame[11]).toBe(0xab);
    }
  });

  it('drops runts, oversized frames and unknown versions', () => {
    expect(decodeFrame(encodeFrame(id, new Uint8Array(13)), 1514)).toEqual({ drop: 'runt' });
    expect(decodeFrame(encodeFrame(id, new Uint8Array(1515)), 1514)).toEqual({ drop: 'too-big' });
    const v2 = encodeFrame(id, frame);
    v2[0] = 2;
    expect(decodeFrame(v2, 1514)).toEqual({ drop: 'version' });
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
