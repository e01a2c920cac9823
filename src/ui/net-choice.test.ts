import { describe, expect, it } from 'vitest';
import { chooseNet, serverNetModes } from './net-choice.ts';

const npmStart = serverNetModes('relay, wisp');

describe('chooseNet', () => {
  it('defaults to the relay where the host offers one, to fetch on a static host', () => {
    expect(chooseNet('http://127.0.0.1:8080/', npmStart)).toEqual({ mode: 'relay', relayUrl: 'ws://127.0.0.1:8080/relay/lab' });
    expect(chooseNet('https://u.github.io/labs/virtio/?disk=none', null)).toEqual({ mode: 'fetch' });
    expect(chooseNet('http://h/', serverNetModes('wisp'))).toEqual({ mode: 'fetch' });
  });

  it('puts the relay and wisp endpoints under the page path, and passes room and token on', () => {
    expect(chooseNet('https://h/labs/virtio/index.html?room=a%20b&token=t', npmStart)).toEqual({
      mode: 'relay',
      relayUrl: 'wss://h/labs/virtio/relay/a%20b?token=t',
    });
    expect(chooseNet('http://h/x/?net=wisp', npmStart)).toEqual({ mode: 'wisp', wispUrl: 'ws://h/x/wisp/' });
    expect(chooseNet('http://h/?net=wisp&wisp=wss://w.example/wisp/', null)).toEqual({ mode: 'wisp', wispUrl: 'wss://w.example/wisp/' });
  });

  it('explains what it cannot use', () => {
    expect(chooseNet('http://h/?net=wisp', null)).toMatchObject({ mode: 'invalid', reason: expect.stringContaining('&wisp=wss://') });
    expect(chooseNet('http://h/?net=wisp&wisp=https://x/', null)).toMatchObject({ mode: 'invalid', reason: expect.stringContaining('not a ws://') });
    expect(chooseNet('http://h/?relay=file:///etc', npmStart)).toMatchObject({ mode: 'invalid' });
    expect(chooseNet('http://h/?net=carrier-pigeon', null)).toMatchObject({ mode: 'invalid', reason: expect.stringContaining('carrier-pigeon') });
    expect(chooseNet('http://h/?net=none', npmStart)).toEqual({ mode: 'none' });
  });

  it('reads only known names from the header', () => {
    expect([...serverNetModes(' Relay ,bogus, wisp')!]).toEqual(['relay', 'wisp']);
    expect(serverNetModes(null)).toBeNull();
  });
});
