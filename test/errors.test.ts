// Every error family raftlog throws on purpose shares one base with a stable
// code; class names and codes are public, so they are pinned here.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CodedError } from '../src/errors.js';
import { ProposalDroppedError, RaftError, StepPeerNotFoundError } from '../src/raft/index.js';
import { WalCorruptError, WalError, WalLockedError } from '../src/wal/index.js';
import { SnapshotCorruptError, StorageError } from '../src/storage/index.js';
import { FrameTooLargeError, TransportError } from '../src/transport/index.js';
import { LogError, NotLeaderError, RecordTooLargeError } from '../src/log/index.js';
import { RespProtocolError } from '../src/kv/resp.js';
import { UsageError } from '../src/cli/args.js';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

describe('CodedError', () => {
  const cases: [CodedError, Function, string, string][] = [
    [new ProposalDroppedError('no-leader'), RaftError, 'ProposalDroppedError', 'RAFT_PROPOSAL_DROPPED'],
    [new StepPeerNotFoundError(9), RaftError, 'StepPeerNotFoundError', 'RAFT_STEP_PEER_NOT_FOUND'],
    [new WalCorruptError('bad', 'f', 3), WalError, 'WalCorruptError', 'WAL_CORRUPT'],
    [new WalLockedError('busy'), WalError, 'WalLockedError', 'WAL_LOCKED'],
    [new SnapshotCorruptError('s', 'crc'), StorageError, 'SnapshotCorruptError', 'SNAPSHOT_CORRUPT'],
    [new FrameTooLargeError(10, 5), TransportError, 'FrameTooLargeError', 'TRANSPORT_FRAME_TOO_LARGE'],
    [new NotLeaderError(2, 'x'), LogError, 'NotLeaderError', 'NOT_LEADER'],
    [new RecordTooLargeError(10, 5), LogError, 'RecordTooLargeError', 'RECORD_TOO_LARGE'],
    [new RespProtocolError('RESP_PROTOCOL', 'junk'), RespProtocolError, 'RespProtocolError', 'RESP_PROTOCOL'],
    [new UsageError('--x'), UsageError, 'UsageError', 'USAGE'],
  ];
  for (const [err, family, name, code] of cases) {
    it(`${name} is a ${family.name} and a CodedError with code ${code}`, () => {
      expect(err).toBeInstanceOf(CodedError);
      expect(err).toBeInstanceOf(Error);
      expect(err).toBeInstanceOf(family);
      expect(err.name).toBe(name);
      expect(err.code).toBe(code);
    });
  }

  it('keeps the cause it is given', () => {
    const cause = new Error('disk');
    expect(new WalLockedError('busy', { cause }).cause).toBe(cause);
  });

  it('no class in src/ extends Error directly except CodedError itself', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = resolve(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/class (\w+)(?:<[^>]*>)? extends (?:Error|TypeError|RangeError)\b/g)) {
            if (m[1] !== 'CodedError') offenders.push(`${p.slice(SRC.length + 1)}: ${m[1]}`);
          }
        }
      }
    };
    walk(SRC);
    expect(offenders).toEqual([]);
  });
});
