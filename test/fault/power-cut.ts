// What a disk may hold after a power cut, rebuilt from a faultfs op log and the
// bytes it recorded: every file's content as of its last fsync, plus any subset
// of the 4 KiB pages written since (a disk persists dirty pages in any order,
// and may extend a file with zeros it never filled); every directory's entries
// as of its last fsync, plus a prefix of the changes made since (a journaling
// file system applies them in order).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { FaultOp } from './run-with-faults.js';

const PAGE = 4096;

interface Inode {
  cur: Buffer;
  durable: Buffer;
}
type Node = Inode | 'dir';

/** The op log up to `cut` (exclusive) as a crash would leave it, written under `out` (mirroring `root`). */
export function crashImage(ops: readonly FaultOp[], data: Buffer, cut: number, root: string, out: string, random: () => number): void {
  const cur = new Map<string, Node>([[root, 'dir']]);
  const durable = new Map<string, Node>([[root, 'dir']]);
  /** Directory changes since each directory's last fsync, in order: [op position, apply to a view]. */
  const pending = new Map<string, Array<(view: Map<string, Node>) => void>>();
  const dirChange = (dir: string, change: (view: Map<string, Node>) => void): void => {
    change(cur);
    const list = pending.get(dir) ?? [];
    list.push(change);
    pending.set(dir, list);
  };
  const move = (view: Map<string, Node>, from: string, to: string): void => {
    for (const [p, n] of [...view]) {
      if (p === from || p.startsWith(`${from}/`)) {
        view.delete(p);
        view.set(to + p.slice(from.length), n);
      }
    }
  };
  const remove = (view: Map<string, Node>, path: string): void => {
    for (const p of [...view.keys()]) if (p === path || p.startsWith(`${path}/`)) view.delete(p);
  };
  for (const op of ops.slice(0, cut)) {
    if (op.ret < 0 || op.err !== '') continue;
    const node = cur.get(op.path);
    switch (op.op) {
      case 'create':
      case 'open':
        if (node === undefined) {
          const inode: Inode = { cur: Buffer.alloc(0), durable: Buffer.alloc(0) };
          dirChange(dirname(op.path), (view) => view.set(op.path, inode));
        } else if (node !== 'dir') {
          node.cur = Buffer.alloc(0); // O_TRUNC
        }
        break;
      case 'write':
      case 'pwrite':
      case 'pwritev':
      case 'writev': {
        if (node === undefined || node === 'dir' || op.doff < 0) break;
        const bytes = data.subarray(op.doff, op.doff + op.ret);
        if (node.cur.length < op.off + bytes.length) node.cur = Buffer.concat([node.cur, Buffer.alloc(op.off + bytes.length - node.cur.length)]);
        bytes.copy(node.cur, op.off);
        break;
      }
      case 'fallocate':
        if (node !== undefined && node !== 'dir' && node.cur.length < op.off + op.len)
          node.cur = Buffer.concat([node.cur, Buffer.alloc(op.off + op.len - node.cur.length)]);
        break;
      case 'ftruncate':
        if (node !== undefined && node !== 'dir')
          node.cur = op.len <= node.cur.length ? Buffer.from(node.cur.subarray(0, op.len)) : Buffer.concat([node.cur, Buffer.alloc(op.len - node.cur.length)]);
        break;
      case 'fsync':
      case 'fdatasync':
        if (node === 'dir') {
          // This directory's entries become durable as they are now.
          for (const p of [...durable.keys()]) if (dirname(p) === op.path) remove(durable, p);
          for (const [p, n] of cur) if (dirname(p) === op.path) durable.set(p, n);
          for (const [p, n] of cur) if (p.startsWith(`${op.path}/`) && dirname(p) !== op.path && durable.has(dirname(p))) durable.set(p, n);
          pending.delete(op.path);
        } else if (node !== undefined) {
          node.durable = Buffer.from(node.cur);
        }
        break;
      case 'rename':
        if (op.to !== undefined) {
          const [from, to] = [op.path, op.to];
          dirChange(dirname(to), (view) => move(view, from, to));
          if (dirname(from) !== dirname(to)) pending.get(dirname(from))?.push(() => undefined);
        }
        break;
      case 'unlink':
      case 'rmdir':
        dirChange(dirname(op.path), (view) => remove(view, op.path));
        break;
      case 'mkdir':
        dirChange(dirname(op.path), (view) => view.set(op.path, 'dir'));
        break;
      default:
        break; // 'lie': a sync that did nothing
    }
  }
  // The crash: durable entries, then a prefix of each directory's later changes.
  const view = new Map(durable);
  for (const changes of pending.values()) {
    const kept = Math.floor(random() * (changes.length + 1));
    for (const change of changes.slice(0, kept)) change(view);
  }
  const contents = new Map<Inode, Buffer>();
  const contentOf = (n: Inode): Buffer => {
    let c = contents.get(n);
    if (c !== undefined) return c;
    c = Buffer.alloc(Math.max(n.cur.length, n.durable.length));
    n.durable.copy(c);
    for (let at = 0; at < n.cur.length; at += PAGE) {
      const end = Math.min(at + PAGE, n.cur.length);
      if (n.cur.subarray(at, end).equals(c.subarray(at, end))) continue;
      if (random() < 0.5) n.cur.copy(c, at, at, end); // this page reached the disk
    }
    contents.set(n, c);
    return c;
  };
  for (const [p, n] of [...view].sort(([a], [b]) => a.length - b.length)) {
    if (p !== root && !p.startsWith(`${root}/`)) continue;
    if (![...view.keys()].includes(dirname(p)) && p !== root) continue; // its directory did not survive
    const target = join(out, relative(root, p));
    if (n === 'dir') mkdirSync(target, { recursive: true });
    else writeFileSync(target, contentOf(n));
  }
}
