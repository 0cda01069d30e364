import * as net from 'node:net';
import { BadAddressError } from './errors.js';

/** Parses 'host:port' or '[v6]:port'. */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) throw new BadAddressError(address);
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (host === '' || !/^\d+$/.test(portText) || port > 65535) throw new BadAddressError(address);
  return { host, port };
}

/** The longest host name DNS allows. */
export const MAX_HOST_LENGTH = 253;

/**
 * Whether `s` is 'host:port' or '[v6]:port' with a port up to 65535 and a host of at most
 * MAX_HOST_LENGTH characters: how options, flags and requests name a member. A port past it
 * was taken as valid, and refused only when dialed; a host of megabytes went into every
 * snapshot's member list, past what a snapshot may carry, and the node could not reopen.
 */
export function isHostPort(s: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]/]+):(\d{1,5})$/.exec(s);
  return m !== null && m[1]!.length <= MAX_HOST_LENGTH && Number(m[2]) <= 65535;
}

/** Whether a peer can be dialled at `s`: 'host:port' with a port from 1, as 0 (any port) is only a listener's. */
export function isPeerAddress(s: string): boolean {
  return isHostPort(s) && Number(s.slice(s.lastIndexOf(':') + 1)) > 0;
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a connection comes from, for a log line; a socket already reset has no address. */
export function clientAddress(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return socket.remoteAddress === undefined ? 'an unknown address' : formatAddress(socket.remoteAddress, socket.remotePort ?? 0);
}

/** The same as fields of a log line, named as the RESP server and the admin endpoint name them. */
export function clientFields(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
} {
  return { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
}

/**
 * One key per client host, for limits counted per address. A listener on '::' sees an IPv4
 * client as '::ffff:a.b.c.d'; it is the same host as 'a.b.c.d', and counts as it.
 */
export function hostKey(remoteAddress: string): string {
  const a = remoteAddress.toLowerCase();
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

/**
 * One key per client network, for limits a stranger must not escape by changing address: an
 * IPv4 address, or an IPv6 address's /64, which one host is given whole (SLAAC, a provider's
 * prefix) and so can draw addresses from without end.
 */
export function networkKey(remoteAddress: string): string {
  const a = hostKey(remoteAddress).replace(/%.*$/, ''); // a link-local zone names this host's interface, not the client
  if (!net.isIPv6(a)) return a;
  // A dotted IPv4 tail stands for two groups, beyond the first four.
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':')).flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const [head = '', tail] = a.split('::');
  const h = groups(head);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - groups(tail).length).fill('0'), ...groups(tail)];
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
