// `raftlog member change`: the flags become one list of changes, additions first, and a
// malformed list is a usage error before anything is sent.
import { describe, expect, it, vi } from 'vitest';
import { parseCommand } from '../../src/cli/args.js';
import { changesOf, main as member } from '../../src/cli/member.js';

const FLAGS = { add: 'string', 'add-learner': 'string', remove: 'string', promote: 'string', demote: 'string' } as const;
const changes = (args: string[]): unknown => changesOf(parseCommand(args, FLAGS).opts);

describe('member change flags', () => {
  it('name every change, additions before removals', () => {
    expect(changes(['--remove', '2,3', '--add', '4=10.0.0.4:7000,5=[::1]:7000', '--add-learner', '6=h6:7000', '--promote', '7', '--demote', '8'])).toEqual([
      { add: 4, address: '10.0.0.4:7000' },
      { add: 5, address: '[::1]:7000' },
      { addLearner: 6, address: 'h6:7000' },
      { promote: 7 },
      { demote: 8 },
      { remove: 2 },
      { remove: 3 },
    ]);
  });

  it('refuse an empty change, bad ids and addresses without a port', () => {
    for (const bad of [
      [],
      ['--remove', '0'],
      ['--remove', '2,,3'],
      ['--promote', 'x'],
      ['--add', '4'],
      ['--add', '4=host'],
      ['--add-learner', 'h:1'],
      ['--add', '4=h:65536'],
      ['--add', '4=h:0'],
      ['--add-learner', '4=10.0.0.4:0'],
    ])
      expect(() => changes(bad), bad.join(' ')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

it('member add and replace refuse a port above 65535, or port 0, before sending anything', async () => {
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    // Nothing listens on port 1: a request sent would fail as ADMIN_UNREACHABLE (exit 3).
    expect(await member(['add', '4', '10.0.0.4:70000', '--admin', '127.0.0.1:1'])).toBe(2);
    expect(await member(['replace', '3', '4', '10.0.0.4:70000', '--admin', '127.0.0.1:1'])).toBe(2);
    expect(await member(['add', '4', '10.0.0.4:0', '--admin', '127.0.0.1:1'])).toBe(2);
    expect(await member(['replace', '3', '4', '10.0.0.4:0', '--admin', '127.0.0.1:1'])).toBe(2);
    expect(err.mock.calls.map((c) => String(c[0]).split('\n')[0])).toEqual([
      "raftlog member: member add needs ID HOST:PORT (the new node's peer address)",
      "raftlog member: member replace needs OLD NEW HOST:PORT (the new node's peer address)",
      'raftlog member: 10.0.0.4:0: port 0 is no port a peer can dial: give the port the node will listen on',
      'raftlog member: 10.0.0.4:0: port 0 is no port a peer can dial: give the port the node will listen on',
    ]);
  } finally {
    vi.restoreAllMocks();
  }
});
