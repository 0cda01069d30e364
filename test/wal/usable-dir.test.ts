// The check, at open, that a directory a layer keeps its files in can hold them. As root every
// permission check passes, so what the check makes of a refusal is tested here with the file
// system's answers given; a path that is a file is tested for real in test/log/damaged-dir.test.ts.
import { constants } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CodedError } from '../../src/errors.js';
import { usableDir, type DirProbe } from '../../src/wal/usable-dir.js';

const fsError = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: refused`), { code });

function probe(stat: 'dir' | 'file' | string, access: 'ok' | string = 'ok', link?: string): DirProbe & { modes: number[] } {
  const modes: number[] = [];
  return {
    modes,
    readlink: async () => {
      if (link === undefined) throw fsError('ENOENT');
      return link;
    },
    stat: async () => {
      if (stat !== 'dir' && stat !== 'file') throw fsError(stat);
      return { isDirectory: () => stat === 'dir' };
    },
    access: async (_path, mode) => {
      modes.push(mode);
      if (access !== 'ok') throw fsError(access);
    },
  };
}

const check = (p: DirProbe): Promise<boolean> => usableDir('/data/wal', (why) => new CodedError('REFUSED', why), p);

describe('usableDir', () => {
  it('a directory this process can read, write and search is used', async () => {
    const p = probe('dir');
    await expect(check(p)).resolves.toBe(true);
    expect(p.modes).toEqual([constants.R_OK | constants.W_OK | constants.X_OK]);
  });

  it('a missing directory is the caller to make; a symbolic link to nothing in its place is refused', async () => {
    await expect(check(probe('ENOENT'))).resolves.toBe(false);
    await expect(check(probe('ENOENT', 'ok', '/mnt/disk/wal'))).rejects.toThrow(/^\/data\/wal is a symbolic link to \/mnt\/disk\/wal, which does not exist$/);
  });

  it.each([
    ['EACCES', /\/data\/wal cannot be read and written by this process \(EACCES\)/],
    ['EROFS', /\/data\/wal cannot be read and written by this process \(EROFS\)/],
    ['EPERM', /\/data\/wal cannot be read and written by this process \(EPERM\)/],
  ])('a directory the access check refuses (%s) is refused, naming it and why', async (code, why) => {
    await expect(check(probe('dir', code))).rejects.toThrow(why);
    await expect(check(probe('dir', code))).rejects.toMatchObject({ code: 'REFUSED' });
  });

  it('a file is refused as not a directory, and no access is asked', async () => {
    const p = probe('file');
    await expect(check(p)).rejects.toThrow(/^\/data\/wal is not a directory$/);
    expect(p.modes).toEqual([]);
  });

  it('a path under a file, or one that cannot be looked at, is refused with what stat said', async () => {
    await expect(check(probe('ENOTDIR'))).rejects.toThrow(/\/data\/wal cannot be looked up: a component of its path is not a directory/);
    await expect(check(probe('EACCES'))).rejects.toThrow(/\/data\/wal cannot be looked up \(EACCES\)/);
  });
});
