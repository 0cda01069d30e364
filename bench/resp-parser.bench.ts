// The RESP command parser on its own: pipelined small SETs, one large value in
// socket-sized chunks, and the worst feeding (a byte at a time).
// `npm run bench -- resp-parser [--quick]`.
import { Bench } from 'tinybench';
import { machineAtStart } from '../src/cli/machine.js';
import { RespParser } from '../src/kv/resp.js';
import { writeResults } from './suite.js';

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

export default async function respParser(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const machine = machineAtStart();
  console.log(machine.header());
  const bench = new Bench({ time: quick ? 200 : 1000 });
  bench
    .add(`${SMALL} pipelined SETs (32 B values), 64 KiB chunks`, () => void feed(pipelined, 64 * 1024))
    .add(`one ${(BIG / 1048576).toFixed(2)} MiB SET, 64 KiB chunks`, () => void feed(big, 64 * 1024))
    .add('100 SETs fed a byte at a time', () => void feed(bytewise, 1));
  await bench.run();
  machine.finish();

  const rows = bench.tasks.map((t) => {
    const r = t.result;
    if (r?.error !== undefined) throw r.error;
    return { case: t.name, msPerOp: r?.latency.mean ?? NaN, samples: r?.latency.samples.length ?? 0 };
  });
  console.log(machine.header());
  console.table(rows.map((r) => ({ case: r.case, 'ms/op': r.msPerOp.toFixed(3), samples: r.samples })));
  const commandsPerSec = (SMALL / rows[0]!.msPerOp) * 1000;
  const pipelinedMiBps = (pipelined.length / 1048576 / rows[0]!.msPerOp) * 1000;
  const largeMiBps = (big.length / 1048576 / rows[1]!.msPerOp) * 1000;
  console.log(`pipelined: ${commandsPerSec.toFixed(0)} commands/s, ${pipelinedMiBps.toFixed(0)} MiB/s`);
  console.log(`large value: ${largeMiBps.toFixed(0)} MiB/s`);
  writeResults('resp-parser', {
    machine: machine.machine,
    quick,
    rows: rows.map((r) => ({ ...r, msPerOp: Math.round(r.msPerOp * 1000) / 1000 })),
    pipelinedCommandsPerSec: Math.round(commandsPerSec),
    pipelinedMiBps: Math.round(pipelinedMiBps),
    largeValueMiBps: Math.round(largeMiBps),
  });
}
