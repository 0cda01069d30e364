// The instance (instance-id.ts) first seen for each peer id, trusted on first use and kept in
// the data directory: a peer id that later comes with another instance had its directory
// wiped or replaced, and is refused. A removed member's record is forgotten, so that its id
// can be added back with an empty directory. Each record keeps the log index this node had
// applied when it was made: a restart applies again the removals above its snapshot, and one
// applied before a record was made must not erase it (it is of the member added back since).
import { join } from 'node:path';
import { readSmallFile, writeFileDurably } from './durable-dir.js';
import { StateCorruptError } from './errors.js';

export const PEER_INSTANCES_FILE = 'peer-instances';
/** A line is at most 16 digits, 32 hex digits, 16 digits, two spaces and a newline: room for about a thousand peers. */
export const PEER_INSTANCES_MAX_BYTES = 64 * 1024;

const LINE = /^([1-9][0-9]{0,15}) ([0-9a-f]{32}) (0|[1-9][0-9]{0,15})$/;

/** The instance recorded for a peer, and the log index this node had applied when it recorded it. */
export interface PeerInstanceRecord {
  instance: string;
  applied: number;
}

export class PeerInstanceFile {
  /** Writes one after the other: each replaces the file with the map as it is then. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Peers whose forgetting is not yet durable, by how many forgets of each are queued. */
  private readonly forgetting = new Map<number, number>();

  private constructor(
    private readonly dataDir: string,
    private map: ReadonlyMap<number, PeerInstanceRecord>,
  ) {}

  /** The records of `dataDir` (none if it has no file yet); STATE_CORRUPT for a damaged or oversized file. */
  static async open(dataDir: string): Promise<PeerInstanceFile> {
    return new PeerInstanceFile(dataDir, await readPeerInstances(dataDir));
  }

  /**
   * The instance recorded for `peer`, if any. None while its forgetting is queued: a record
   * then asked for is written after it, where the forget cannot erase it, and the instance of
   * a member added back since is not held to the one it replaced.
   */
  recorded(peer: number): string | undefined {
    return this.forgetting.has(peer) ? undefined : this.map.get(peer)?.instance;
  }

  /**
   * Records `instance` as `peer`'s unless one is recorded already; resolves, once the record
   * is durable, to the one recorded (the first, when two arrive together). `applied`: the
   * log index this node has applied now.
   */
  record(peer: number, instance: string, applied: number): Promise<string> {
    return this.update((map) => {
      if (!map.has(peer)) map.set(peer, { instance, applied });
    }).then((map) => map.get(peer)!.instance);
  }

  /**
   * Forgets, durably before it resolves, the records of `peers` made before this node applied
   * `index` (the entry that removed them, or a snapshot that passed over their changes): one
   * made at or after it is of an instance met since, as when a restart applies the removal again.
   */
  async forget(peers: Iterable<number>, index: number): Promise<void> {
    const ids = [...peers];
    for (const id of ids) this.forgetting.set(id, (this.forgetting.get(id) ?? 0) + 1);
    try {
      await this.update((map) => {
        for (const id of ids) {
          const r = map.get(id);
          if (r !== undefined && r.applied < index) map.delete(id);
        }
      });
    } finally {
      for (const id of ids) {
        const n = this.forgetting.get(id)! - 1;
        if (n === 0) this.forgetting.delete(id);
        else this.forgetting.set(id, n);
      }
    }
  }

  /** Resolves once every record and forgetting asked so far is over (done or failed). */
  async settled(): Promise<void> {
    await this.queue;
  }

  private update(change: (map: Map<number, PeerInstanceRecord>) => void): Promise<ReadonlyMap<number, PeerInstanceRecord>> {
    const run = this.queue.then(async () => {
      const next = new Map(this.map);
      change(next);
      if (!sameRecords(next, this.map)) {
        const text = [...next].map(([id, r]) => `${id} ${r.instance} ${r.applied}\n`).join('');
        await writeFileDurably(this.dataDir, PEER_INSTANCES_FILE, text);
        this.map = next;
      }
      return this.map;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Records are never changed, only added or deleted: the same objects are the same records. */
function sameRecords(a: ReadonlyMap<number, PeerInstanceRecord>, b: ReadonlyMap<number, PeerInstanceRecord>): boolean {
  return a.size === b.size && [...a].every(([id, r]) => b.get(id) === r);
}

/** The records a directory holds, without opening it for writing: for `raftlog inspect`. */
export async function readPeerInstances(dataDir: string): Promise<Map<number, PeerInstanceRecord>> {
  const file = join(dataDir, PEER_INSTANCES_FILE);
  const text = await readSmallFile(file, PEER_INSTANCES_MAX_BYTES);
  const map = new Map<number, PeerInstanceRecord>();
  if (text === undefined) return map;
  const damaged = (why: string): StateCorruptError =>
    new StateCorruptError(`${file} ${why}: delete it to have this node trust each peer's next instance as it first meets it`);
  if (text.length > PEER_INSTANCES_MAX_BYTES) throw damaged(`is over ${PEER_INSTANCES_MAX_BYTES} bytes`);
  if (text.length > 0 && !text.endsWith('\n')) throw damaged('ends within a line');
  const lines = text.split('\n').slice(0, -1);
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(line);
    const id = m === null ? NaN : Number(m[1]);
    const applied = m === null ? NaN : Number(m[3]);
    if (m === null || !Number.isSafeInteger(id) || !Number.isSafeInteger(applied))
      throw damaged(`line ${i + 1} is not a node id, an instance id and a log index`);
    if (map.has(id)) throw damaged(`names node ${id} twice`);
    map.set(id, { instance: m[2]!, applied });
  }
  return map;
}

/** Forgets every record of `dataDir`, durably, whatever its file held: for a node made a cluster of its own. */
export async function forgetAllPeerInstances(dataDir: string): Promise<void> {
  await writeFileDurably(dataDir, PEER_INSTANCES_FILE, '');
}
