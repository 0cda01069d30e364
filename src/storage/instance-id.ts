// What tells this data directory apart from any other the same node id ran on: a random
// id made the first time the directory is opened. Peers remember it (peer-instances.ts), so
// a node whose directory was wiped or replaced, which no longer holds what it acknowledged,
// comes back as a new instance they refuse, instead of voting as if it held it.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readSmallFile, writeFileDurably } from './durable-dir.js';
import { StateCorruptError } from './errors.js';

export const INSTANCE_FILE = 'instance';
/** 128 random bits, as lowercase hex. */
export const INSTANCE_ID = /^[0-9a-f]{32}$/;

/**
 * The directory's instance id, made (durably) if it has none: a directory from an older
 * version, or one whose file was lost, gets a new one, which peers that knew the old one
 * refuse. A file that is not one id is damage, refused with STATE_CORRUPT.
 */
export async function openInstanceId(dataDir: string): Promise<string> {
  const held = await readInstanceId(dataDir);
  if (held !== undefined) return held;
  const id = randomBytes(16).toString('hex');
  await writeFileDurably(dataDir, INSTANCE_FILE, `${id}\n`);
  return id;
}

/** The instance id a directory holds, if any, without making one: for `raftlog inspect`. */
export async function readInstanceId(dataDir: string): Promise<string | undefined> {
  const text = await readSmallFile(join(dataDir, INSTANCE_FILE), 33);
  return text === undefined ? undefined : parseInstanceId(text, join(dataDir, INSTANCE_FILE));
}

function parseInstanceId(text: string, file: string): string {
  const id = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!INSTANCE_ID.test(id)) {
    throw new StateCorruptError(
      `${file} is not an instance id (32 lowercase hex digits): delete it to give the directory a new one, which its peers then refuse until the node is removed and added back`,
    );
  }
  return id;
}
