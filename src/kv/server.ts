// The key-value example served over RESP2, so redis-cli and redis-benchmark work
// against a raftlog node. Writes go through the log (a follower forwards them to
// the leader); reads wait for a barrier first, so they are linearizable.
import net from 'node:net';
import { formatAddress, parseAddress } from '../transport/address.js';
import { KvStateMachine, encodeCommand, type KvCommand, type KvResult } from './kv-state-machine.js';
import { OK, RespParser, RespProtocolError, RespSimple, encode, type Reply } from './resp.js';

/** What the server needs of the log; ReplicatedLog has this shape. */
export interface KvLog {
  append(data: Uint8Array): Promise<{ index: number; term: number; result: unknown }>;
  barrier(): Promise<void>;
  status(): object;
}

export interface RespServer {
  /** 'host:port' actually bound (port 0 picks one). */
  address: string;
  close(): Promise<void>;
}

class CommandError extends Error {}

const WRITES: Record<string, (args: Buffer[]) => KvCommand> = {
  SET: (a) => {
    if (a.length !== 2) throw new CommandError("ERR wrong number of arguments for 'set' command (options are not supported)");
    return ['SET', a[0]!, a[1]!];
  },
  DEL: (a) => {
    if (a.length < 1) throw new CommandError("ERR wrong number of arguments for 'del' command");
    return ['DEL', ...a];
  },
  INCR: (a) => {
    if (a.length !== 1) throw new CommandError("ERR wrong number of arguments for 'incr' command");
    return ['INCR', a[0]!];
  },
};

function toReply(r: KvResult): Reply {
  if ('error' in r) return new Error(r.error);
  if ('int' in r) return r.int;
  return OK;
}

/** INFO: the node's raft status as `key:value` lines. */
function info(status: object): string {
  const lines = ['# Raft'];
  for (const [k, v] of Object.entries(status)) {
    if (v === undefined) continue;
    lines.push(`${k}:${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  return lines.join('\r\n') + '\r\n';
}

/** RAFT.MEMBERS: one line per member: id, address, voter or learner. */
function members(status: object): Reply {
  const s = status as { members?: Record<string, string>; conf?: { voters: number[]; learners: number[] }; lead?: number };
  const out: Reply[] = [];
  for (const [id, addr] of Object.entries(s.members ?? {})) {
    const n = Number(id);
    const role = s.conf?.learners.includes(n) ? 'learner' : 'voter';
    out.push(`${id} ${addr} ${role}${s.lead === n ? ' leader' : ''}`);
  }
  return out;
}

export async function serveResp(o: { log: KvLog; kv: KvStateMachine; address: string }): Promise<RespServer> {
  const { log, kv } = o;
  const sockets = new Set<net.Socket>();

  const execute = async (args: Buffer[], lastWrite: Promise<unknown>): Promise<Reply> => {
    const name = args[0]!.toString('latin1').toUpperCase();
    const rest = args.slice(1);
    const write = WRITES[name];
    if (write !== undefined) {
      const { result } = await log.append(encodeCommand(write(rest)));
      return toReply(result as KvResult);
    }
    switch (name) {
      case 'PING':
        return rest.length === 0 ? new RespSimple('PONG') : rest[0]!;
      case 'ECHO':
        if (rest.length !== 1) throw new CommandError("ERR wrong number of arguments for 'echo' command");
        return rest[0]!;
      case 'GET':
      case 'EXISTS': {
        if (rest.length < 1 || (name === 'GET' && rest.length !== 1)) throw new CommandError(`ERR wrong number of arguments for '${name.toLowerCase()}' command`);
        // A read follows this connection's earlier writes and everything committed before it.
        await lastWrite.catch(() => undefined);
        await log.barrier();
        return name === 'GET' ? (kv.get(rest[0]!) ?? null) : rest.filter((k) => kv.has(k)).length;
      }
      case 'INFO':
        return info(log.status());
      case 'RAFT.MEMBERS':
        return members(log.status());
      case 'DBSIZE':
        await log.barrier();
        return kv.size;
      case 'COMMAND':
      case 'CONFIG':
        return []; // redis-cli and redis-benchmark ask at start; an empty answer is accepted
      case 'SELECT':
        if (rest[0]?.toString() !== '0') throw new CommandError('ERR only database 0 exists');
        return OK;
      default:
        throw new CommandError(`ERR unknown command '${args[0]!.toString('latin1').slice(0, 64)}'`);
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const parser = new RespParser();
    // Commands run concurrently; replies leave in command order.
    let replies: Promise<void> = Promise.resolve();
    let lastWrite: Promise<unknown> = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      let cmds: Buffer[][];
      try {
        cmds = parser.push(chunk);
      } catch (err) {
        const msg = err instanceof RespProtocolError ? err.message : String(err);
        replies = replies.then(() => void socket.end(encode(new Error(`ERR ${msg}`))));
        return;
      }
      for (const args of cmds) {
        const name = args[0]!.toString('latin1').toUpperCase();
        if (name === 'QUIT') {
          replies = replies.then(() => void socket.end(encode(OK)));
          return;
        }
        const p = execute(args, lastWrite).catch((err: unknown): Reply => {
          if (err instanceof CommandError) return new Error(err.message);
          const e = err as { code?: string; message?: string };
          return new Error(`ERR ${e.code ?? 'INTERNAL'} ${e.message ?? String(err)}`);
        });
        if (WRITES[name] !== undefined) lastWrite = p;
        replies = replies.then(async () => {
          const r = await p;
          if (!socket.destroyed) socket.write(encode(r));
        });
      }
    });
    socket.on('error', () => socket.destroy()); // the client went away; its pending replies have nowhere to go
    socket.on('close', () => sockets.delete(socket));
  });

  const { host, port } = parseAddress(o.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  return {
    address: formatAddress(host, bound.port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
