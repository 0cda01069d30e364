// One client's connection: its commands parsed a batch at a time, started in order within its
// marks (commands awaiting replies, bytes held, reply bytes unsent), and its replies written in
// command order as the kernel takes them. A connection that sends faster than it is answered,
// or reads none of its replies, is paused; one that goes quiet, or never authenticates, is closed.
import type net from 'node:net';
import type { RefusalLog } from '../refusal-log.js';
import { clientAddress } from '../transport/address.js';
import { AUTH_FAILURES_PER_CONNECTION, NOAUTH, UNAUTHENTICATED_LIMITS, type Access } from './access.js';
import type { Budget, Held } from './budget.js';
import { errorReply } from './command-error.js';
import { BARRIER_READS, WRITES, answer, commandName, read, refusedBeforeAuth, toReply, type KvLog } from './commands.js';
import { encodeCommand, type KvResult, type KvStateMachine } from './kv-state-machine.js';
import { OK, RespParser, RespProtocolError, encodedLength, heapCost, type Reply, type RespLimits } from './resp.js';
import { writeReply, type SlotReply } from './write-reply.js';

const EMPTY = Buffer.alloc(0);
/**
 * Commands parsed ahead of those started: enough that a pipeline pays for a parse call once
 * per many commands, few enough that a connection not read holds little parsed (see parse()).
 */
const PARSE_AHEAD = 64;

/** A command's place in its connection's replies, which go out in command order. */
interface Slot {
  /** Undefined until the command finishes. */
  reply: SlotReply | undefined;
  /** Nothing after it runs: QUIT, or a protocol error. */
  last: boolean;
  /** What the reply counts as unsent while it waits for those before it (see answer()); 0 for the map's values and the log's results. */
  bytes: number;
}

/** What a connection needs of its server, the same for all of them. */
export interface ConnectionContext {
  log: KvLog;
  kv: KvStateMachine;
  parameters: ReadonlyArray<[string, string]>;
  limits: RespLimits;
  hwCommands: number;
  hwBytes: number;
  /** The sockets' own high-water mark (see serveResp). */
  socketHwBytes: number;
  idleTimeoutMs: number;
  authTimeoutMs: number;
  access: Access;
  budget: Budget;
  refusals: RefusalLog;
}

/** `stranger`: gives back the connection's place among those not authenticated (see Access.admitStranger). */
export function serveConnection(socket: net.Socket, stranger: () => void, c: ConnectionContext): void {
  const { log, kv, parameters, limits, hwCommands, hwBytes, socketHwBytes, idleTimeoutMs, authTimeoutMs, access, budget, refusals } = c;
  const { clients, counters } = budget;
  const held: Held = { bytes: 0, authed: access.password === null, queued: 0 };
  clients.set(socket, held);
  socket.setNoDelay(true);
  const parser = new RespParser(held.authed ? limits : UNAUTHENTICATED_LIMITS);
  // The idle timeout restarts with every byte: a client that trickles a command never
  // reaches it, so before AUTH a deadline counts from the accept.
  const authDeadline = held.authed
    ? undefined
    : setTimeout(() => {
        counters.idleClosed++;
        socket.destroy();
      }, authTimeoutMs);
  let lastWrite: Promise<unknown> = Promise.resolve();
  /**
   * Parsed commands not yet started: at most a batch (see PARSE_AHEAD), the rest of what was
   * read is left in the parser as bytes. Each counts against the budget what it costs the heap.
   */
  let waiting: Buffer[][] = [];
  let waitingHead = 0; // an index, not shift()
  const waitingCount = (): number => waiting.length - waitingHead;
  // What this client holds against the budget (held.bytes): its parser's, and its waiting commands'.
  let parserBytes = 0;
  let waitingBytes = 0;
  /** Adds to what this client holds; a client closed (evicted, or gone) holds nothing more. */
  const charge = (delta: number): void => {
    if (socket.destroyed) return;
    held.bytes += delta;
    budget.buffered += delta;
  };
  /**
   * Forgets the commands not started. A connection that is gone (evicted, timed out, closed by
   * the client) has nobody to answer: as Redis frees a client with its unprocessed commands,
   * those not yet proposed to the log never are. Those already proposed cannot be taken back.
   * Whole commands still unparsed are counted, not kept.
   */
  const drop = (): void => {
    counters.dropped += waitingCount();
    charge(-waitingBytes);
    waitingBytes = 0;
    waiting = [];
    waitingHead = 0;
    while (parser.more && parser.error === null) {
      try {
        counters.dropped += parser.push(EMPTY, PARSE_AHEAD).length;
      } catch (err) {
        if (!(err instanceof RespProtocolError)) throw err;
      }
    }
  };
  const nextWaiting = (): Buffer[] => {
    const cmd = waiting[waitingHead++]!;
    if (waitingHead === waiting.length) {
      waiting = [];
      waitingHead = 0;
    }
    const cost = heapCost(cmd);
    waitingBytes -= cost;
    charge(-cost);
    return cmd;
  };
  // Replies in command order; a slot is filled when its command finishes.
  const slots: Slot[] = [];
  let inflight = 0;
  // Bytes the commands awaiting replies hold (the arguments of reads waiting for a barrier).
  let heldBytes = 0;
  /**
   * This connection's reads waiting for their barrier. A write after them waits until they have
   * read: proposed at once, it could apply first, and a pipelined GET then SET read the SET's value.
   */
  let reading = 0;
  let paused = false;
  let ending = false; // QUIT or a protocol error: nothing after it runs
  let authFailures = 0;
  /**
   * Unsent reply bytes past which this connection is not read. A stranger's replies are
   * -NOAUTH and -WRONGPASS, 33 bytes for a 6-byte PING: under an authenticated client's mark
   * (1 MiB), 10,000 strangers that read nothing held 10 GB until their AUTH deadline.
   */
  const replyMark = (): number => (held.authed ? hwBytes : socketHwBytes);
  // This connection's share of writeBuffered: its unsent reply bytes when it last looked.
  let unsent = 0;
  const recount = (): void => {
    const now = socket.destroyed ? 0 : socket.writableLength;
    budget.writeBuffered += now - unsent;
    unsent = now;
  };
  /** Counts reply bytes finished and waiting in their slots (held.queued) as unsent, over all clients too. */
  const queue = (delta: number): void => {
    held.queued += delta;
    budget.writeBuffered += delta;
  };
  /**
   * Set when the budget over all clients held this connection back. Only one with replies
   * unsent is held back, so one of its writes is still to end and call written, which tries
   * again: no list of those waiting to wake, and no timer.
   */
  let heldBack = false;
  /**
   * Under its own mark, and under the budget over all clients unless it has nothing unsent: then
   * one reply may pass it. `waiting`: the bytes of replies finished and not written, counted too
   * before a command starts (a write moves them, it does not add them).
   */
  const mayWrite = (waiting: number): boolean => {
    recount();
    const mine = unsent + waiting;
    if (mine >= replyMark()) return false;
    if (mine === 0 || budget.writeBuffered < budget.maxWriteBufferedBytes) return true;
    heldBack = true;
    return false;
  };
  // A protocol error, answered once the commands read before it have started.
  let failure: Error | null = null;

  // A paused socket still reads into its buffer, up to its high-water mark, and every byte read
  // puts the idle timeout off: a client that read none of its replies held them, and its
  // connection, for as long as it trickled a byte now and then. While paused, and once the
  // last reply is written, one whose replies the kernel took none of for idleTimeoutMs is
  // closed, whatever it sends; after the last, one that has not closed its end too.
  let unread: NodeJS.Timeout | undefined;
  const watchUnread = (taken: number): void => {
    unread = setTimeout(() => {
      const now = socket.bytesWritten - socket.writableLength;
      if (now === taken && (socket.writableLength > 0 || socket.writableEnded)) {
        counters.idleClosed++;
        socket.destroy();
      } else watchUnread(now);
    }, idleTimeoutMs);
  };

  const setPaused = (p: boolean): void => {
    if (p === paused) return;
    paused = p;
    if (p) {
      counters.pauses++;
      counters.paused++;
      socket.pause();
      if (idleTimeoutMs > 0) watchUnread(socket.bytesWritten - socket.writableLength);
    } else {
      counters.paused--;
      clearTimeout(unread);
      socket.resume();
    }
  };

  /** Stops reading above a high-water mark, reads again below the low-water marks. */
  const regulate = (): void => {
    if (socket.destroyed || socket.writableEnded) return;
    recount();
    const buffered = unsent + held.queued;
    const replyBytes = replyMark();
    // Past the budget, only a client whose replies are unsent stops being read: one that reads them is served.
    const overBudget = buffered > 0 && budget.writeBuffered >= budget.maxWriteBufferedBytes;
    if (overBudget) heldBack = true;
    if (
      !paused &&
      (inflight >= hwCommands || heldBytes >= hwBytes || buffered >= replyBytes || overBudget || ending || failure !== null || waitingCount() > 0)
    ) {
      counters.maxWriteBuffered = Math.max(counters.maxWriteBuffered, buffered);
      setPaused(true);
    } else if (
      paused &&
      !ending &&
      failure === null &&
      waitingCount() === 0 &&
      !parser.more &&
      inflight <= hwCommands >>> 1 &&
      heldBytes <= hwBytes >>> 1 &&
      buffered <= replyBytes >>> 1 &&
      !overBudget
    )
      setPaused(false);
  };

  /**
   * Writes the replies that are ready, in order, while the unsent bytes are under the mark; the
   * rest wait in their slots for 'drain'. The reads a connection has in flight (up to 1024)
   * all answer at once, and written as they came they passed the mark by up to 1024 replies.
   */
  const flush = (): void => {
    while (slots.length > 0 && slots[0]!.reply !== undefined) {
      // At or past the mark, which is at least the socket's own: the last write asked for 'drain'.
      // Held back by the budget: a write of its own is still to end, and call written.
      if (!socket.destroyed && !mayWrite(0)) return;
      const { reply, last, bytes } = slots.shift()!;
      inflight--;
      if (bytes !== 0) queue(-bytes);
      if (socket.destroyed) continue;
      if (last) {
        writeReply(socket, reply!, written);
        recount();
        socket.end();
        // Nothing after it runs, but the socket is read again (what comes is dropped) so that
        // it sees the client close: paused with bytes unread, it stayed open until its idle timeout.
        setPaused(false);
        // What it sends is read, and puts the idle timeout off.
        if (idleTimeoutMs > 0) watchUnread(socket.bytesWritten - socket.writableLength);
        continue;
      }
      writeReply(socket, reply!, written);
      recount();
    }
  };

  // The end of each reply's writes: the kernel took some bytes, and the budget may let this
  // connection go on. One function for all, so that Node schedules one tick for a run of writes
  // that end at once, not one for each.
  const written = (): void => {
    recount();
    if (!heldBack) return;
    heldBack = false;
    flush();
    if (paused || waitingCount() > 0) dispatch();
  };

  // Reply bytes reaching the kernel may let waiting commands start, or reading resume. Only a
  // write that found the buffer above its high-water mark is followed by 'drain'; written sees
  // the others, but goes on only for a connection the budget held back.
  socket.on('drain', () => {
    flush();
    if (paused || waitingCount() > 0) dispatch();
  });

  const settle = (slot: Slot, reply: SlotReply): void => {
    slot.reply = reply;
    flush();
    dispatch();
  };

  /** Starts waiting commands, parsing more, while under the high-water marks; then a protocol error's reply, if one is due. */
  const dispatch = (): void => {
    if (socket.destroyed) return drop();
    while (inflight < hwCommands && heldBytes < hwBytes && !ending && mayWrite(held.queued)) {
      if (waitingCount() === 0) {
        if (!parser.more) break;
        parse(EMPTY);
        if (socket.destroyed) return drop();
        if (waitingCount() === 0) break;
      }
      if (reading > 0 && WRITES[commandName(waiting[waitingHead]!)] !== undefined) break;
      start(nextWaiting());
    }
    if (failure !== null && !ending && waitingCount() === 0) {
      // The stream can no longer be trusted: the commands before it were answered, then this error, and close.
      ending = true;
      slots.push({ reply: failure, last: true, bytes: 0 });
      inflight++;
      flush();
    }
    regulate();
  };

  /**
   * A web page on this host may POST to this port: protected mode serves it as a loopback
   * client, each line of the HTTP head fails as an unknown command, and a command in the body
   * would run. As Redis does, the first 'POST' or 'Host:' closes the connection, before AUTH
   * too, and nothing after it runs.
   */
  const refuseCrossProtocol = (): void => {
    ending = true;
    drop();
    budget.refused('KV_CROSS_PROTOCOL');
    refusals.warn(
      { code: 'KV_CROSS_PROTOCOL', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a cross-protocol request from ${clientAddress(socket)}: a 'POST' or 'Host:' command, as an HTTP request (a web page's) sends; connection closed, nothing after it runs`,
    );
    socket.destroy();
  };

  const start = (args: Buffer[]): void => {
    const name = commandName(args);
    if (name === 'POST' || name === 'HOST:') return refuseCrossProtocol();
    const slot: Slot = { reply: undefined, last: false, bytes: 0 };
    slots.push(slot);
    inflight++;
    counters.maxInflight = Math.max(counters.maxInflight, inflight);
    if (name === 'QUIT') {
      ending = true;
      slot.last = true;
      slot.reply = OK;
      flush();
      return;
    }
    if (name === 'AUTH') {
      const r = access.auth(args, socket);
      if (r.wrongPassword === true) counters.authFailures++;
      if (r.ok && !held.authed) {
        held.authed = true;
        clearTimeout(authDeadline);
        stranger();
        parser.setLimits(limits);
      }
      slot.reply = r.reply;
      // A password is guessed a connection at a time, not thousands of guesses pipelined on one.
      const tooMany = r.wrongPassword === true && ++authFailures >= AUTH_FAILURES_PER_CONNECTION;
      if (tooMany || r.throttled === true) {
        ending = true;
        slot.last = true;
        drop();
        if (r.throttled === true) budget.refused('KV_AUTH_THROTTLED');
        refusals.warn(
          { code: tooMany ? 'KV_AUTH_FAILED' : 'KV_AUTH_THROTTLED', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
          `RESP server closed the connection from ${clientAddress(socket)}: ${tooMany ? `${authFailures} failed AUTH attempts` : (r.reply as Error).message}`,
        );
      }
      flush();
      return;
    }
    if (!held.authed) {
      slot.reply = refusedBeforeAuth(name, args) ?? NOAUTH;
      flush();
      return;
    }
    const write = WRITES[name];
    if (write === undefined && !BARRIER_READS.has(name)) {
      let reply: Reply;
      try {
        reply = answer(log, parameters, name, args);
      } catch (err) {
        reply = errorReply(err);
      }
      slot.reply = reply;
      slot.bytes = encodedLength(reply);
      queue(slot.bytes);
      flush();
      return;
    }
    if (write === undefined) {
      const refused = budget.admitRead(socket);
      if (refused !== null) {
        slot.reply = refused;
        flush();
        return;
      }
      // A read holds its arguments until the barrier it waits for: counted until it is answered.
      const holds = heapCost(args);
      heldBytes += holds;
      reading++;
      const done = (reply: SlotReply): void => {
        heldBytes -= holds;
        budget.pendingReads--;
        reading--;
        settle(slot, reply);
      };
      void read(log, kv, name, args, lastWrite).then(done, (err: unknown) => done(errorReply(err)));
      return;
    }
    // A write goes straight to the log, with no promise of its own on the way: these
    // few lines run for every SET a server takes.
    let appended: ReturnType<KvLog['append']>;
    try {
      appended = log.append(encodeCommand(write(args.slice(1))));
    } catch (err) {
      // A wrong arity, or a log that throws rather than rejects: an error reply, never a crash.
      slot.reply = errorReply(err);
      flush();
      return;
    }
    lastWrite = appended.then(
      ({ result }) => settle(slot, toReply(result as KvResult)),
      (err: unknown) => settle(slot, errorReply(err)),
    );
  };

  /**
   * Parses the commands that may start next, a batch of them, and counts what this client then
   * holds against the budget, before any of them starts: a client closed for it proposes none.
   * The rest stays in the parser as the bytes that came, which cost less than parsed commands
   * (a 7-byte GET is some 400 bytes of arrays and Buffers): a connection that is not read while
   * its commands wait held a whole chunk of them parsed, 3.6 MB of heap for 63 KB of GETs.
   * Before AUTH one command at a time, so the limits rise right after an AUTH.
   */
  const parse = (input: Buffer): void => {
    let cmds: Buffer[][] = [];
    try {
      cmds = parser.push(input, held.authed ? PARSE_AHEAD : 1);
    } catch (err) {
      if (!(err instanceof RespProtocolError)) throw err;
    }
    let cost = parser.retainedBytes - parserBytes;
    parserBytes += cost;
    for (const c of cmds) {
      waiting.push(c);
      const each = heapCost(c);
      waitingBytes += each;
      cost += each;
    }
    charge(cost);
    if (budget.buffered > budget.maxBufferedBytes) budget.evict();
    const err = parser.error;
    if (err !== null && !ending && failure === null) failure = new Error(`ERR ${err.message}`);
  };

  socket.on('data', (chunk: Buffer) => {
    if (ending || failure !== null) return;
    parse(chunk);
    dispatch();
  });
  if (idleTimeoutMs > 0) {
    socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      // Not idle while commands wait on the log; idle if nothing was read or written meanwhile,
      // replies ready and unsent included: they wait only for the client to read.
      if (slots.length > 0 && slots[0]!.reply === undefined) {
        socket.setTimeout(idleTimeoutMs);
        return;
      }
      counters.idleClosed++;
      socket.destroy();
    });
  }
  socket.on('error', () => socket.destroy()); // the client went away; its pending replies have nowhere to go
  socket.on('close', () => {
    drop();
    clearTimeout(authDeadline);
    clearTimeout(unread);
    recount();
    // Its replies are forgotten: the slots left are dropped as their commands finish.
    for (const slot of slots) slot.bytes = 0;
    queue(-held.queued);
    stranger();
    budget.buffered -= held.bytes;
    held.bytes = 0;
    clients.delete(socket);
    if (paused) counters.paused--;
  });
}
