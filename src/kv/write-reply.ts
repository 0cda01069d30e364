// How a reply reaches the socket. A GET's value stays the map's own until it is written, and a
// large one is written as that Buffer, not copied: the replies a client has not read yet are
// held until it reads them, so what each costs is what a slow reader can make the server hold.
import type * as net from 'node:net';
import { encode, type Reply } from './resp.js';
import { valueBytes, type StoredValue } from './stored-value.js';

/** A bulk reply of at least this many bytes is written as the value itself (values this size are stored as Buffers). */
const UNCOPIED_REPLY_BYTES = 4096;
const CRLF = Buffer.from('\r\n');

/**
 * A GET's value as the map keeps it, made bytes only when written: a reply waiting behind the
 * mark of unsent bytes (see flush) costs a reference, not a copy of a small value.
 */
export class ValueReply {
  constructor(readonly value: StoredValue) {}
}

export type SlotReply = Reply | ValueReply;

/**
 * Writes a reply; a large value goes out as the Buffer the map stores (never changed in place)
 * between its header and \r\n, not copied into one reply. Unread replies are held until the
 * client reads them: a copy each let a client that pipelined 1024 GETs of one 4 MiB value and
 * read nothing hold 4 GiB.
 */
export function writeReply(socket: net.Socket, slotReply: SlotReply, written: () => void): void {
  const reply = slotReply instanceof ValueReply ? valueBytes(slotReply.value) : slotReply;
  if (!Buffer.isBuffer(reply) || reply.length < UNCOPIED_REPLY_BYTES) {
    socket.write(encode(reply), written);
    return;
  }
  socket.cork();
  socket.write(Buffer.from(`$${reply.length}\r\n`, 'latin1'));
  socket.write(reply);
  socket.write(CRLF, written);
  socket.uncork();
}
