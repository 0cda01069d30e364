// Each side of a handshake names its instance: the data directory it runs on. A node given
// a record of its peers' instances (the log keeps one in its data directory) trusts the first
// it meets for a peer id and refuses any other after: a peer whose directory was wiped or
// replaced no longer holds what it acknowledged, and must not vote as if it did.
import { MalformedFrameError, PeerReplacedError } from './errors.js';

/** The instance first met for each peer id, kept where it survives a restart. */
export interface PeerInstances {
  /** The instance recorded for `peer`, if any. */
  recorded(peer: number): string | undefined;
  /** Records `instance` for `peer` unless one is; resolves, once durable, to the one recorded (the first, if two race). */
  record(peer: number, instance: string): Promise<string>;
}

/**
 * Checks the instance an authenticated `peer` named against the record: undefined when it is
 * the recorded one (or there is no record to keep), a promise that settles once a first one is
 * recorded durably; PeerReplacedError, thrown or rejected, for another.
 */
export function admitInstance(book: PeerInstances | undefined, peer: number, instance: Uint8Array | undefined): Promise<void> | undefined {
  if (book === undefined) return undefined;
  if (instance === undefined) throw new MalformedFrameError(`node ${peer} named no instance id`);
  const hex = Buffer.from(instance).toString('hex');
  const known = book.recorded(peer);
  if (known === hex) return undefined;
  if (known !== undefined) throw new PeerReplacedError(peer);
  return book.record(peer, hex).then((first) => {
    if (first !== hex) throw new PeerReplacedError(peer);
  });
}
