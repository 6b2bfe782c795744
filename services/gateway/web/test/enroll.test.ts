import { describe, expect, it } from 'vitest';
import { isLoopbackHost, loopbackUrls } from '../src/lib/enroll';

describe('the NATS URLs hosts are given', () => {
  it('finds the ones only the hub itself can reach', () => {
    expect(
      loopbackUrls([
        'tls://localhost:4222',
        'tls://127.0.0.1:4222',
        'tls://[::1]:4222',
        'tls://hub.example.com:4222',
        'tls://10.0.0.5:4222',
        'nats://localhost.example.com',
      ]),
    ).toEqual(['tls://localhost:4222', 'tls://127.0.0.1:4222', 'tls://[::1]:4222']);
  });
  it('judges the page address the same way', () => {
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('hub.example.com')).toBe(false);
    expect(isLoopbackHost('192.168.1.10')).toBe(false);
  });
});
