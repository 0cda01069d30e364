// Peer and client addresses as written in options and in log lines: IPv6 hosts in brackets,
// so the port can be told from the address.
import { describe, expect, it } from 'vitest';
import { BadAddressError } from '../../src/transport/errors.js';
import { clientAddress, formatAddress, hostKey, isHostPort, isPeerAddress, networkKey, parseAddress } from '../../src/transport/address.js';

describe('addresses', () => {
  it.each([
    ['127.0.0.1:7000', '127.0.0.1', 7000],
    ['[::1]:7000', '::1', 7000],
    ['node-2.example:0', 'node-2.example', 0],
  ])('parses %s and formats it back', (address, host, port) => {
    expect(parseAddress(address)).toEqual({ host, port });
    expect(formatAddress(host, port)).toBe(address);
  });

  it.each(['7000', ':7000', 'host:', 'host:70000', 'host:7a', '[::1]'])('refuses %j', (address) => {
    expect(() => parseAddress(address)).toThrow(BadAddressError);
  });

  it.each([
    ['127.0.0.1:65535', true],
    ['[::1]:0', true],
    ['node-2.example:7000', true],
    ['127.0.0.1:65536', false],
    ['127.0.0.1:99999', false],
    ['10.0.0.4', false],
    ['::1:7000', false],
    ['a b:7000', false],
    ['http://a:7000', false],
    ['', false],
    // DNS names are at most 253 characters.
    [`${'h'.repeat(253)}:7000`, true],
    [`${'h'.repeat(254)}:7000`, false],
  ])('takes %j as a member address: %s', (address, ok) => {
    expect(isHostPort(address)).toBe(ok);
  });

  it('dials no peer at port 0, which only a listener may take', () => {
    expect(isPeerAddress('127.0.0.1:1')).toBe(true);
    expect(isPeerAddress('[::1]:65535')).toBe(true);
    for (const a of ['127.0.0.1:0', '[::1]:00', 'node-2.example:0', '127.0.0.1:65536', 'embedded']) expect(isPeerAddress(a), a).toBe(false);
  });

  it('names a client for a log line, an IPv6 one in brackets, one already reset as unknown', () => {
    expect(clientAddress({ remoteAddress: '10.0.0.7', remotePort: 51234 })).toBe('10.0.0.7:51234');
    expect(clientAddress({ remoteAddress: '::1', remotePort: 51234 })).toBe('[::1]:51234');
    expect(clientAddress({ remoteAddress: '::ffff:10.0.0.7', remotePort: 51234 })).toBe('[::ffff:10.0.0.7]:51234');
    expect(clientAddress({ remoteAddress: undefined, remotePort: undefined })).toBe('an unknown address');
  });

  it('counts an IPv4-mapped client as its IPv4 host', () => {
    expect(hostKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(hostKey('::1')).toBe('::1');
  });

  it('keys a client network: an IPv4 address, or the /64 of an IPv6 one, however it is written', () => {
    expect(networkKey('10.1.2.3')).toBe('10.1.2.3');
    expect(networkKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    for (const a of ['2001:db8:0:1::1', '2001:DB8:0:1:ffff:ffff:ffff:ffff', '2001:0db8:0000:0001::', '2001:db8::1:0:0:0:7', '2001:db8:0:1:0:0:1.2.3.4'])
      expect(networkKey(a), a).toBe('2001:db8:0:1::/64');
    expect(networkKey('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(networkKey('::1')).toBe('0:0:0:0::/64');
    expect(networkKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(networkKey('64:ff9b::1.2.3.4')).toBe('64:ff9b:0:0::/64');
  });
});
