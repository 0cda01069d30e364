import { MessageType } from '../../src/raft/types.js';
import type { Message } from '../../src/raft/types.js';
import type { SnapshotStreams } from '../../src/transport/snapshot-streams.js';
import type { TransportHandlers, TransportLogger } from '../../src/transport/transport.js';

export function msg(from: number, to: number, over: Partial<Message> = {}): Message {
  return { type: MessageType.MsgHeartbeat, from, to, term: 1, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, ...over };
}

/** Polls until `cond` holds; fails with `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits for `p`, but fails with `what` after `ms`: a regression must not hang until the test timeout. */
export async function within<T>(what: string, p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export { RecordingLogger as LogCapture } from '../recording-logger.js';

/** Handlers that record everything they are told. */
export class Recorder implements TransportHandlers {
  readonly messages: Message[] = [];
  readonly unreachable: number[] = [];
  readonly snapshotStatus: Array<[number, boolean]> = [];
  /** The peers that refused this node as removed, in the order they did. */
  readonly removedBy: number[] = [];
  snapshots?: SnapshotStreams;
  logger?: TransportLogger;
  onMessage(m: Message): void {
    this.messages.push(m);
  }
  onUnreachable(peer: number): void {
    this.unreachable.push(peer);
  }
  onSnapshotStatus(peer: number, ok: boolean): void {
    this.snapshotStatus.push([peer, ok]);
  }
  onRemoved(peer: number): void {
    this.removedBy.push(peer);
  }
}

export { seeded, testSeed } from '../seeded.js';
