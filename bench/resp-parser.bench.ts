// The RESP command parser on its own: pipelined small SETs, one large value in
// socket-sized chunks, and the worst feeding (a byte at a time).
// Run: npx tsx bench/resp-parser.bench.ts
import { Bench } from 'tinybench';
import { RespParser } from '../src/kv/resp.js';

const command = (args: string[]): Buffer => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);

const SMALL = 10_000;
const pipelined = Buffer.concat(Array.from({ length: SMALL }, (_, i) => command(['SET', `key:${i}`, 'x'.repeat(32)])));
const BIG = 4 * 1024 * 1024 - 128 * 1024;
const big = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${BIG}\r\n`), Buffer.alloc(BIG, 0x61), Buffer.from('\r\n')]);
const bytewise = Buffer.concat(Array.from({ length: 100 }, (_, i) => command(['SET', `k${i}`, 'v'])));

function feed(wire: Buffer, chunk: number): number {
  const p = new RespParser();
  let n = 0;
  for (let at = 0; at < wire.length; at += chunk) n += p.push(wire.subarray(at, at + chunk)).length;
  return n;
}

const bench = new Bench({ time: 1000 });
bench
  .add(`${SMALL} pipelined SETs (32 B values), 64 KiB chunks`, () => void feed(pipelined, 64 * 1024))
  .add(`one ${(BIG / 1048576).toFixed(2)} MiB SET, 64 KiB chunks`, () => void feed(big, 64 * 1024))
  .add('100 SETs fed a byte at a time', () => void feed(bytewise, 1));
await bench.run();

const rows = bench.tasks.map((t) => {
  const r = t.result as { latency?: { mean: number }; period?: number } | undefined;
  const ms = r?.latency?.mean ?? r?.period ?? NaN;
  return { case: t.name, 'ms/op': ms.toFixed(3) };
});
console.table(rows);
const mb = pipelined.length / 1048576;
const row0 = Number(rows[0]!['ms/op']);
console.log(`pipelined: ${((SMALL / row0) * 1000).toFixed(0)} commands/s, ${((mb / row0) * 1000).toFixed(0)} MiB/s`);
const row1 = Number(rows[1]!['ms/op']);
console.log(`large value: ${((big.length / 1048576 / row1) * 1000).toFixed(0)} MiB/s`);
