// One client's connection: its commands parsed a batch at a time, started in order within its
// marks (commands awaiting replies, bytes held, reply bytes unsent), and its replies written in
// command order as the kernel takes them. A connection that sends faster than it is answered,
// or reads none of its replies, is paused; one that goes quiet, or never authenticates, is closed.
import type * as net from 'node:net';
import type { RefusalLog } from '../refusal-log.js';
import { clientAddress } from '../transport/address.js';
import { AUTH_FAILURES_PER_CONNECTION, NOAUTH, UNAUTHENTICATED_LIMITS, type Access } from './access.js';
import type { Budget, Held } from './budget.js';
import { errorReply } from './command-error.js';
import { BARRIER_READS, WRITES, answer, commandName, read, refusedBeforeAuth, toReply, type KvLog } from './commands.js';
import { encodeCommand, type KvCommand, type KvResult, type KvStateMachine } from './kv-state-machine.js';
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

/** Serves a client until its connection closes; `stranger` gives back its place among those not authenticated (see Access.admitStranger). */
export function serveConnection(socket: net.Socket, stranger: () => void, server: ConnectionContext): void {
  new Connection(socket, stranger, server);
}

class Connection {
  private readonly budget: Budget;
  private readonly held: Held;
  private parser: RespParser;
  private readonly authDeadline: NodeJS.Timeout | undefined;
  private lastWrite: Promise<unknown> = Promise.resolve();
  /**
   * Parsed commands not yet started: at most a batch (see PARSE_AHEAD), the rest of what was
   * read is left in the parser as bytes. Each counts against the budget what it costs the heap.
   */
  private waiting: Buffer[][] = [];
  private waitingHead = 0; // an index, not shift()
  // What this client holds against the budget (held.bytes): its parser's, and its waiting commands'.
  private parserBytes = 0;
  private waitingBytes = 0;
  // Replies in command order; a slot is filled when its command finishes.
  private readonly slots: Slot[] = [];
  private inflight = 0;
  // Bytes the commands awaiting replies hold (the arguments of reads waiting for a barrier).
  private heldBytes = 0;
  /**
   * This connection's reads waiting for their barrier. A write after them waits until they have
   * read: proposed at once, it could apply first, and a pipelined GET then SET read the SET's value.
   */
  private reading = 0;
  private paused = false;
  private ending = false; // QUIT or a protocol error: nothing after it runs
  /**
   * The client's end came: it closed, or only shut down its sending side and still reads (as
   * `nc -N` does at the end of its input), which TCP does not tell apart. As for a closed
   * connection, its commands not started are dropped; those started are answered, and the
   * connection ends after the last reply. Ended at once, a client that still read got only the
   * replies ready at its end, not those of the writes it had just made.
   */
  private clientDone = false;
  private authFailures = 0;
  // This connection's share of writeBuffered: its unsent reply bytes when it last looked.
  private unsent = 0;
  /**
   * Set when the budget over all clients held this connection back. Only one with replies
   * unsent is held back, so one of its writes is still to end and call written, which tries
   * again: no list of those waiting to wake, and no timer.
   */
  private heldBack = false;
  // A protocol error, answered once the commands read before it have started.
  private failure: Error | null = null;
  // A paused socket still reads into its buffer, up to its high-water mark, and every byte read
  // puts the idle timeout off: a client that read none of its replies held them, and its
  // connection, for as long as it trickled a byte now and then. While paused, and once the
  // last reply is written, one whose replies the kernel took none of for idleTimeoutMs is
  // closed, whatever it sends; after the last, one that has not closed its end too.
  private unread: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly stranger: () => void,
    private readonly server: ConnectionContext,
  ) {
    this.budget = server.budget;
    this.held = { bytes: 0, authed: server.access.password === null, queued: 0 };
    this.budget.clients.set(socket, this.held);
    socket.setNoDelay(true);
    this.parser = new RespParser(this.held.authed ? server.limits : UNAUTHENTICATED_LIMITS);
    // The idle timeout restarts with every byte: a client that trickles a command never
    // reaches it, so before AUTH a deadline counts from the accept.
    this.authDeadline = this.held.authed
      ? undefined
      : setTimeout(() => {
          this.budget.counters.idleClosed++;
          socket.destroy();
        }, server.authTimeoutMs);
    // Reply bytes reaching the kernel may let waiting commands start, or reading resume. Only a
    // write that found the buffer above its high-water mark is followed by 'drain'; written sees
    // the others, but goes on only for a connection the budget held back.
    socket.on('drain', () => {
      this.flush();
      if (this.paused || this.waitingCount() > 0) this.dispatch();
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.ending || this.failure !== null) return;
      this.parse(chunk);
      this.dispatch();
    });
    socket.on('end', () => {
      this.clientDone = true;
      this.ending = true;
      this.drop();
      this.endIfAnswered();
    });
    if (server.idleTimeoutMs > 0) {
      socket.setTimeout(server.idleTimeoutMs);
      socket.on('timeout', () => {
        // Not idle while commands wait on the log; idle if nothing was read or written meanwhile,
        // replies ready and unsent included: they wait only for the client to read.
        if (this.slots.length > 0 && this.slots[0]!.reply === undefined) {
          socket.setTimeout(server.idleTimeoutMs);
          return;
        }
        this.budget.counters.idleClosed++;
        socket.destroy();
      });
    }
    socket.on('error', () => socket.destroy()); // the client went away; its pending replies have nowhere to go
    socket.on('close', () => this.closed());
  }

  private waitingCount(): number {
    return this.waiting.length - this.waitingHead;
  }

  /** Adds to what this client holds; a client closed (evicted, or gone) holds nothing more. */
  private charge(delta: number): void {
    if (this.socket.destroyed) return;
    this.held.bytes += delta;
    this.budget.buffered += delta;
  }

  /**
   * Forgets the commands not started. A connection that is gone (evicted, timed out, closed by
   * the client) has nobody to answer: as Redis frees a client with its unprocessed commands,
   * those not yet proposed to the log never are. Those already proposed cannot be taken back.
   * Whole commands still unparsed are counted, not kept. Called when a connection is condemned
   * (an AUTH that closes it, a cross-protocol request) as well as at its close: at most once
   * does it give back what the connection held.
   */
  private drop(): void {
    const { counters } = this.budget;
    counters.dropped += this.waitingCount();
    this.charge(-this.waitingBytes);
    this.waitingBytes = 0;
    this.waiting = [];
    this.waitingHead = 0;
    while (this.parser.more && this.parser.error === null) {
      try {
        counters.dropped += this.parser.push(EMPTY, PARSE_AHEAD).length;
      } catch (err) {
        if (!(err instanceof RespProtocolError)) throw err;
      }
    }
    // Nothing is parsed after this, though the socket may stay open until the client reads its
    // end: the bytes kept for a command cut off, or sent after an AUTH that closed it, are let go.
    if (this.parserBytes > 0) {
      this.parser = new RespParser();
      this.charge(-this.parserBytes);
      this.parserBytes = 0;
    }
  }

  private nextWaiting(): Buffer[] {
    const cmd = this.waiting[this.waitingHead++]!;
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    }
    const cost = heapCost(cmd);
    this.waitingBytes -= cost;
    this.charge(-cost);
    return cmd;
  }

  /**
   * Unsent reply bytes past which this connection is not read. A stranger's replies are
   * -NOAUTH and -WRONGPASS, 33 bytes for a 6-byte PING: under an authenticated client's mark
   * (1 MiB), 10,000 strangers that read nothing held 10 GB until their AUTH deadline.
   */
  private replyMark(): number {
    return this.held.authed ? this.server.hwBytes : this.server.socketHwBytes;
  }

  private recount(): void {
    const now = this.socket.destroyed ? 0 : this.socket.writableLength;
    this.budget.writeBuffered += now - this.unsent;
    this.unsent = now;
  }

  /** Counts reply bytes finished and waiting in their slots (held.queued) as unsent, over all clients too. */
  private queue(delta: number): void {
    this.held.queued += delta;
    this.budget.writeBuffered += delta;
  }

  /**
   * Under its own mark, and under the budget over all clients unless it has nothing unsent: then
   * one reply may pass it. `waiting`: the bytes of replies finished and not written, counted too
   * before a command starts (a write moves them, it does not add them).
   */
  private mayWrite(waiting: number): boolean {
    this.recount();
    const mine = this.unsent + waiting;
    if (mine >= this.replyMark()) return false;
    if (mine === 0 || this.budget.writeBuffered < this.budget.maxWriteBufferedBytes) return true;
    this.heldBack = true;
    return false;
  }

  private watchUnread(taken: number): void {
    // One watch at a time: a write that failed (EPIPE) leaves the socket neither ended nor yet
    // destroyed, so a pause can follow the last reply's watch, and a watch replaced uncleared
    // outlived the connection.
    clearTimeout(this.unread);
    this.unread = setTimeout(() => {
      const { socket } = this;
      const now = socket.bytesWritten - socket.writableLength;
      if (now === taken && (socket.writableLength > 0 || socket.writableEnded)) {
        this.budget.counters.idleClosed++;
        socket.destroy();
      } else this.watchUnread(now);
    }, this.server.idleTimeoutMs);
  }

  private setPaused(p: boolean): void {
    if (p === this.paused) return;
    this.paused = p;
    const { counters } = this.budget;
    if (p) {
      counters.pauses++;
      counters.paused++;
      this.socket.pause();
      if (this.server.idleTimeoutMs > 0) this.watchUnread(this.socket.bytesWritten - this.socket.writableLength);
    } else {
      counters.paused--;
      clearTimeout(this.unread);
      this.socket.resume();
    }
  }

  /** Stops reading above a high-water mark, reads again below the low-water marks. */
  private regulate(): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    this.recount();
    const { hwCommands, hwBytes } = this.server;
    const { inflight, heldBytes } = this;
    const buffered = this.unsent + this.held.queued;
    const replyBytes = this.replyMark();
    // Past the budget, only a client whose replies are unsent stops being read: one that reads them is served.
    const overBudget = buffered > 0 && this.budget.writeBuffered >= this.budget.maxWriteBufferedBytes;
    if (overBudget) this.heldBack = true;
    const stopped = this.ending || this.failure !== null || this.waitingCount() > 0;
    if (!this.paused && (inflight >= hwCommands || heldBytes >= hwBytes || buffered >= replyBytes || overBudget || stopped)) {
      this.budget.counters.maxWriteBuffered = Math.max(this.budget.counters.maxWriteBuffered, buffered);
      this.setPaused(true);
    } else if (
      this.paused &&
      !stopped &&
      !this.parser.more &&
      inflight <= hwCommands >>> 1 &&
      heldBytes <= hwBytes >>> 1 &&
      buffered <= replyBytes >>> 1 &&
      !overBudget
    )
      this.setPaused(false);
  }

  /**
   * Writes the replies that are ready, in order, while the unsent bytes are under the mark; the
   * rest wait in their slots for 'drain'. The reads a connection has in flight (up to 1024)
   * all answer at once, and written as they came they passed the mark by up to 1024 replies.
   */
  private flush(): void {
    const { socket, slots } = this;
    while (slots.length > 0 && slots[0]!.reply !== undefined) {
      // At or past the mark, which is at least the socket's own: the last write asked for 'drain'.
      // Held back by the budget: a write of its own is still to end, and call written.
      if (!socket.destroyed && !this.mayWrite(0)) return;
      const { reply, last, bytes } = slots.shift()!;
      this.inflight--;
      if (bytes !== 0) this.queue(-bytes);
      if (socket.destroyed) continue;
      writeReply(socket, reply!, this.written);
      this.recount();
      if (last) {
        socket.end();
        // Nothing after it runs, but the socket is read again (what comes is dropped) so that
        // it sees the client close: paused with bytes unread, it stayed open until its idle timeout.
        this.setPaused(false);
        // What it sends is read, and puts the idle timeout off.
        if (this.server.idleTimeoutMs > 0) this.watchUnread(socket.bytesWritten - socket.writableLength);
      }
    }
    this.endIfAnswered();
  }

  /** Ends a connection whose client's end came once its started commands are answered. */
  private endIfAnswered(): void {
    const { socket } = this;
    if (this.clientDone && this.slots.length === 0 && !socket.destroyed && !socket.writableEnded) socket.end();
  }

  // The end of each reply's writes: the kernel took some bytes, and the budget may let this
  // connection go on. One function for all, so that Node schedules one tick for a run of writes
  // that end at once, not one for each.
  private readonly written = (): void => {
    this.recount();
    if (!this.heldBack) return;
    this.heldBack = false;
    this.flush();
    if (this.paused || this.waitingCount() > 0) this.dispatch();
  };

  private settle(slot: Slot, reply: SlotReply): void {
    slot.reply = reply;
    this.flush();
    this.dispatch();
  }

  /** Starts waiting commands, parsing more, while under the high-water marks; then a protocol error's reply, if one is due. */
  private dispatch(): void {
    const { socket, server } = this;
    if (socket.destroyed) return this.drop();
    while (this.inflight < server.hwCommands && this.heldBytes < server.hwBytes && !this.ending && this.mayWrite(this.held.queued)) {
      if (this.waitingCount() === 0) {
        if (!this.parser.more) break;
        this.parse(EMPTY);
        if (socket.destroyed) return this.drop();
        if (this.waitingCount() === 0) break;
      }
      if (this.reading > 0 && WRITES[commandName(this.waiting[this.waitingHead]!)] !== undefined) break;
      this.start(this.nextWaiting());
    }
    if (this.failure !== null && !this.ending && this.waitingCount() === 0) {
      // The stream can no longer be trusted: the commands before it were answered, then this error, and close.
      this.ending = true;
      this.slots.push({ reply: this.failure, last: true, bytes: 0 });
      this.inflight++;
      this.flush();
    }
    this.regulate();
  }

  /**
   * A web page on this host may POST to this port: protected mode serves it as a loopback
   * client, each line of the HTTP head fails as an unknown command, and a command in the body
   * would run. As Redis does, the first 'POST' or 'Host:' closes the connection, before AUTH
   * too, and nothing after it runs.
   */
  private refuseCrossProtocol(): void {
    const { socket } = this;
    this.ending = true;
    this.drop();
    this.budget.refused('KV_CROSS_PROTOCOL');
    this.server.refusals.warn(
      { code: 'KV_CROSS_PROTOCOL', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a cross-protocol request from ${clientAddress(socket)}: a 'POST' or 'Host:' command, as an HTTP request (a web page's) sends; connection closed, nothing after it runs`,
    );
    socket.destroy();
  }

  private start(args: Buffer[]): void {
    const name = commandName(args);
    if (name === 'POST' || name === 'HOST:') return this.refuseCrossProtocol();
    const slot: Slot = { reply: undefined, last: false, bytes: 0 };
    this.slots.push(slot);
    this.inflight++;
    const { counters } = this.budget;
    counters.maxInflight = Math.max(counters.maxInflight, this.inflight);
    const write = WRITES[name];
    if (name === 'QUIT') {
      this.ending = true;
      slot.last = true;
      slot.reply = OK;
      // Nothing after it runs, though the socket stays until the client reads its end: what came after is let go now.
      this.drop();
    } else if (name === 'AUTH') this.auth(args, slot);
    else if (!this.held.authed) slot.reply = refusedBeforeAuth(name, args) ?? NOAUTH;
    else if (write !== undefined) return this.write(write, args, slot);
    else if (BARRIER_READS.has(name)) return this.read(name, args, slot);
    else {
      let reply: Reply;
      try {
        reply = answer(this.server.log, this.server.parameters, name, args);
      } catch (err) {
        reply = errorReply(err);
      }
      slot.reply = reply;
      slot.bytes = encodedLength(reply);
      this.queue(slot.bytes);
    }
    this.flush();
  }

  private auth(args: Buffer[], slot: Slot): void {
    const { socket, held } = this;
    const r = this.server.access.auth(args, socket);
    if (r.wrongPassword === true) this.budget.counters.authFailures++;
    if (r.ok && !held.authed) {
      held.authed = true;
      clearTimeout(this.authDeadline);
      this.stranger();
      this.parser.setLimits(this.server.limits);
    }
    slot.reply = r.reply;
    // A password is guessed a connection at a time, not thousands of guesses pipelined on one.
    const tooMany = r.wrongPassword === true && ++this.authFailures >= AUTH_FAILURES_PER_CONNECTION;
    if (tooMany || r.throttled === true) {
      this.ending = true;
      slot.last = true;
      this.drop();
      if (r.throttled === true) this.budget.refused('KV_AUTH_THROTTLED');
      this.server.refusals.warn(
        { code: tooMany ? 'KV_AUTH_FAILED' : 'KV_AUTH_THROTTLED', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
        `RESP server closed the connection from ${clientAddress(socket)}: ${tooMany ? `${this.authFailures} failed AUTH attempts` : (r.reply as Error).message}`,
      );
    }
  }

  private read(name: string, args: Buffer[], slot: Slot): void {
    const refused = this.budget.admitRead(this.socket);
    if (refused !== null) {
      slot.reply = refused;
      this.flush();
      return;
    }
    // A read holds its arguments until the barrier it waits for: counted until it is answered.
    const holds = heapCost(args);
    this.heldBytes += holds;
    this.reading++;
    const done = (reply: SlotReply): void => {
      this.heldBytes -= holds;
      this.budget.pendingReads--;
      this.reading--;
      this.settle(slot, reply);
    };
    void read(this.server.log, this.server.kv, name, args, this.lastWrite).then(done, (err: unknown) => done(errorReply(err)));
  }

  // A write goes straight to the log, with no promise of its own on the way: these
  // few lines run for every SET a server takes.
  private write(command: (args: Buffer[]) => KvCommand, args: Buffer[], slot: Slot): void {
    let appended: ReturnType<KvLog['append']>;
    try {
      appended = this.server.log.append(encodeCommand(command(args.slice(1))));
    } catch (err) {
      // A wrong arity, or a log that throws rather than rejects: an error reply, never a crash.
      slot.reply = errorReply(err);
      this.flush();
      return;
    }
    this.lastWrite = appended.then(
      ({ result }) => this.settle(slot, toReply(result as KvResult)),
      (err: unknown) => this.settle(slot, errorReply(err)),
    );
  }

  /**
   * Parses the commands that may start next, a batch of them, and counts what this client then
   * holds against the budget, before any of them starts: a client closed for it proposes none.
   * The rest stays in the parser as the bytes that came, which cost less than parsed commands
   * (a 7-byte GET is some 400 bytes of arrays and Buffers): a connection that is not read while
   * its commands wait held a whole chunk of them parsed, 3.6 MB of heap for 63 KB of GETs.
   * Before AUTH one command at a time, so the limits rise right after an AUTH.
   */
  private parse(input: Buffer): void {
    const { parser, budget } = this;
    let cmds: Buffer[][] = [];
    try {
      cmds = parser.push(input, this.held.authed ? PARSE_AHEAD : 1);
    } catch (err) {
      if (!(err instanceof RespProtocolError)) throw err;
    }
    let cost = parser.retainedBytes - this.parserBytes;
    this.parserBytes += cost;
    for (const c of cmds) {
      this.waiting.push(c);
      const each = heapCost(c);
      this.waitingBytes += each;
      cost += each;
    }
    this.charge(cost);
    if (budget.buffered > budget.maxBufferedBytes) budget.evict();
    const err = parser.error;
    if (err !== null && !this.ending && this.failure === null) this.failure = new Error(`ERR ${err.message}`);
  }

  private closed(): void {
    const { budget, held } = this;
    this.drop();
    clearTimeout(this.authDeadline);
    clearTimeout(this.unread);
    this.recount();
    // Its replies are forgotten: the slots left are dropped as their commands finish.
    for (const slot of this.slots) slot.bytes = 0;
    this.queue(-held.queued);
    this.stranger();
    budget.buffered -= held.bytes;
    held.bytes = 0;
    budget.clients.delete(this.socket);
    if (this.paused) budget.counters.paused--;
  }
}
