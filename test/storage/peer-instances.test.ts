// The record of peers' instances: as the transport reads it while a removal's forgetting is
// still being written (the member added back must be neither refused nor left unrecorded), and
// as a removal applied again at a restart forgets only what was recorded before it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerInstanceFile } from '../../src/storage/peer-instances.js';
import { admitInstance } from '../../src/transport/peer-instances.js';

const OLD = '0123456789abcdef0123456789abcdef';
const NEW = 'fedcba9876543210fedcba9876543210';

describe('PeerInstanceFile', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function dirHolding(text: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-peers-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'peer-instances'), text);
    return dir;
  }
  /** Node 3 recorded as OLD at index 4, forgotten by its removal at 10, and met as `instance` before the forget is durable. */
  async function metWhileForgetting(instance: string): Promise<{ file: PeerInstanceFile; written: string }> {
    const dir = dirHolding(`3 ${OLD} 4\n`);
    const file = await PeerInstanceFile.open(dir);
    const forgetting = file.forget([3], 10);
    const book = { recorded: (peer: number) => file.recorded(peer), record: (peer: number, inst: string) => file.record(peer, inst, 10) };
    const admitted = (async () => admitInstance(book, 3, Buffer.from(instance, 'hex')))();
    await Promise.all([forgetting, admitted]);
    return { file, written: readFileSync(join(dir, 'peer-instances'), 'utf8') };
  }

  it('while a forget is pending, admits and records the new instance of a member removed and added back', async () => {
    const { file, written } = await metWhileForgetting(NEW);
    expect(file.recorded(3)).toBe(NEW);
    expect(written).toBe(`3 ${NEW} 10\n`);
  });

  it('while a forget is pending, records again the instance it met, so the forget does not erase it', async () => {
    const { file, written } = await metWhileForgetting(OLD);
    expect(file.recorded(3)).toBe(OLD);
    expect(written).toBe(`3 ${OLD} 10\n`);
  });

  it('of two instances met together for a peer with no record, the first is recorded and the second refused as replaced', async () => {
    const dir = dirHolding('');
    const file = await PeerInstanceFile.open(dir);
    const book = { recorded: (peer: number) => file.recorded(peer), record: (peer: number, inst: string) => file.record(peer, inst, 5) };
    // Both are met before either record is durable: neither is refused by what is recorded yet.
    const first = admitInstance(book, 3, Buffer.from(OLD, 'hex'));
    const second = admitInstance(book, 3, Buffer.from(NEW, 'hex'));
    const outcomes = await Promise.allSettled([first, second]);
    expect(outcomes[0]).toEqual({ status: 'fulfilled', value: undefined });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'TRANSPORT_PEER_REPLACED' } });
    expect(file.recorded(3)).toBe(OLD);
    expect(readFileSync(join(dir, 'peer-instances'), 'utf8')).toBe(`3 ${OLD} 5\n`);
  });

  it('a forget applied again at or below the index a record was made at (a restart replaying the removal) keeps it', async () => {
    const dir = dirHolding(`2 ${OLD} 0\n3 ${NEW} 12\n`);
    const file = await PeerInstanceFile.open(dir);
    await file.forget([3], 10);
    await file.forget([3], 12);
    expect(file.recorded(3)).toBe(NEW);
    expect(readFileSync(join(dir, 'peer-instances'), 'utf8')).toBe(`2 ${OLD} 0\n3 ${NEW} 12\n`);
    expect((await PeerInstanceFile.open(dir)).recorded(3)).toBe(NEW);
    // A removal applied after the record was made erases it.
    await file.forget([3], 13);
    expect(file.recorded(3)).toBeUndefined();
    expect(readFileSync(join(dir, 'peer-instances'), 'utf8')).toBe(`2 ${OLD} 0\n`);
  });

  it('a forget lost in a crash before it was durable erases, applied again, the record made before it', async () => {
    const dir = dirHolding(`3 ${OLD} 4\n`);
    await (await PeerInstanceFile.open(dir)).forget([3], 10);
    expect(readFileSync(join(dir, 'peer-instances'), 'utf8')).toBe('');
    expect((await PeerInstanceFile.open(dir)).recorded(3)).toBeUndefined();
  });
});
