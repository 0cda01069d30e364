// The record of peers' instances as the transport reads it while a removal's forgetting is
// still being written: the member added back must be neither refused nor left unrecorded.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PeerInstanceFile } from '../../src/storage/peer-instances.js';
import { admitInstance } from '../../src/transport/peer-instances.js';

const OLD = '0123456789abcdef0123456789abcdef';
const NEW = 'fedcba9876543210fedcba9876543210';

describe('PeerInstanceFile while a forget is pending', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** Node 3 recorded as OLD, forgotten (its removal applied), and met as `instance` before the forget is durable. */
  async function metWhileForgetting(instance: string): Promise<{ file: PeerInstanceFile; written: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-peers-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'peer-instances'), `3 ${OLD}\n`);
    const file = await PeerInstanceFile.open(dir);
    const forgetting = file.forget([3]);
    const admitted = (async () => admitInstance(file, 3, Buffer.from(instance, 'hex')))();
    await Promise.all([forgetting, admitted]);
    return { file, written: readFileSync(join(dir, 'peer-instances'), 'utf8') };
  }

  it('admits and records the new instance of a member removed and added back', async () => {
    const { file, written } = await metWhileForgetting(NEW);
    expect(file.recorded(3)).toBe(NEW);
    expect(written).toBe(`3 ${NEW}\n`);
  });

  it('records again the instance it met while forgetting it, so the forget does not erase it', async () => {
    const { file, written } = await metWhileForgetting(OLD);
    expect(file.recorded(3)).toBe(OLD);
    expect(written).toBe(`3 ${OLD}\n`);
  });
});
