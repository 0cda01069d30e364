import { MessageType, type Message, type Storage } from '../raft/types.js';

/**
 * An ack leaves once its Ready is durable, but a later Ready may already have
 * overwritten the entries it names, and one group fsync can make both durable
 * before the ack is sent: it would then promise entries the log no longer holds.
 * Such acks are dropped, as if lost (the leader asks again). An ack carries the
 * acknowledged entry's term in logTerm.
 */
export function dropStaleAcks(msgs: Message[], log: Pick<Storage, 'firstIndex' | 'lastIndex' | 'term'>): Message[] {
  let out: Message[] | null = null;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    // Below the first index everything is committed and can no longer change.
    const stale = m.type === MessageType.MsgAppResp && !m.reject && m.index >= log.firstIndex() && (m.index > log.lastIndex() || log.term(m.index) !== m.logTerm);
    if (stale && out === null) out = msgs.slice(0, i);
    else if (!stale && out !== null) out.push(m);
  }
  return out ?? msgs;
}
