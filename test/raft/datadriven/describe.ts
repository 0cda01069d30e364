// Messages, entries and Readys as one-line texts a reader can follow: the
// vocabulary of the transcripts in test/raft/testdata.
import {
  ConfChangeType,
  EntryType,
  MessageType,
  ProgressStateType,
  StateType,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
  type Snapshot,
} from '../../../src/raft/types.js';
import { decodeConfChangeEntry } from '../../../src/raft/index.js';

const dec = new TextDecoder();

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChangeEntry(e.data);
    return `${e.term}/${e.index} ${cc.changes.length === 0 ? 'leave-joint' : cc.changes.map((x) => `${ConfChangeType[x.type]} ${x.nodeId}`).join(', ')}`;
  }
  return `${e.term}/${e.index} ${e.data.length === 0 ? '(empty)' : JSON.stringify(dec.decode(e.data))}`;
}

export function describeSnapshot(s: Snapshot): string {
  return `Index:${s.meta.index} Term:${s.meta.term} ${describeConf(s.meta.conf)}`;
}

/** `from->to Type Term:t ...`, with only the fields that type uses. */
export function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term}`;
  switch (m.type) {
    case MessageType.MsgApp:
      return `${head} Log:${m.logTerm}/${m.index} Commit:${m.commit}${m.entries.length > 0 ? ` Entries:[${m.entries.map(describeEntry).join(', ')}]` : ''}`;
    case MessageType.MsgAppResp:
      if (m.reject) return `${head} Rejected Index:${m.index} (Hint: ${m.rejectHintTerm ?? 0}/${m.rejectHint})`;
      return `${head} Log:${m.logTerm}/${m.index}`;
    case MessageType.MsgVote:
    case MessageType.MsgPreVote:
      return `${head} Log:${m.logTerm}/${m.index}${m.context !== undefined && m.context.length > 0 ? ' (leadership transfer)' : ''}`;
    case MessageType.MsgVoteResp:
    case MessageType.MsgPreVoteResp:
    case MessageType.MsgReadIndexResp:
      return `${head}${m.reject ? ' Rejected' : ''}`;
    case MessageType.MsgHeartbeat:
      return `${head} Commit:${m.commit}`;
    case MessageType.MsgSnap:
      return `${head} Snapshot: ${describeSnapshot(m.snapshot!)}`;
    case MessageType.MsgProp:
      return `${head} Entries:[${m.entries.map(describeEntry).join(', ')}]`;
    default:
      return head;
  }
}

export function stateName(s: StateType): string {
  return StateType[s].replace(/^State/, '');
}

export function progressName(s: ProgressStateType): string {
  return ProgressStateType[s].replace(/^ProgressState/, '');
}

/** A Ready, field by field (empty fields left out). */
export function describeReady(rd: Ready): string[] {
  const out = [`Ready MustSync=${rd.mustSync}:`];
  if (rd.softState !== undefined) out.push(`State:${stateName(rd.softState.state)} Lead:${rd.softState.lead}`);
  if (rd.hardState !== undefined) out.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
  if (rd.snapshot !== undefined) out.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.entries.length > 0) out.push('Entries:', ...rd.entries.map((e) => `  ${describeEntry(e)}`));
  if (rd.committedEntries.length > 0) out.push('CommittedEntries:', ...rd.committedEntries.map((e) => `  ${describeEntry(e)}`));
  if (rd.messages.length > 0) out.push('Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
  if (rd.messagesAfterPersist.length > 0) out.push('MessagesAfterPersist:', ...rd.messagesAfterPersist.map((m) => `  ${describeMessage(m)}`));
  for (const rs of rd.readStates) out.push(`ReadState Index:${rs.index} Context:${JSON.stringify(dec.decode(rs.context))}`);
  for (const ctx of rd.readsRefused ?? []) out.push(`ReadRefused Context:${JSON.stringify(dec.decode(ctx))}`);
  return out;
}

/** `voters [1 2 3]`; joint: `voters [1 2 4]&&[1 2 3]`, with learners and the learners to be. */
export function describeConf(c: ConfState): string {
  const ids = (xs: readonly number[] | undefined): string => `[${(xs ?? []).join(' ')}]`;
  const parts = [`voters ${ids(c.voters)}${(c.votersOutgoing?.length ?? 0) > 0 ? `&&${ids(c.votersOutgoing)}` : ''}`];
  if (c.learners.length > 0) parts.push(`learners ${ids(c.learners)}`);
  if ((c.learnersNext?.length ?? 0) > 0) parts.push(`learners-next ${ids(c.learnersNext)}`);
  if (c.autoLeave === true) parts.push('auto-leave');
  return parts.join(' ');
}
