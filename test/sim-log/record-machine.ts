// The simulation's state machine: the whole list of (position, record) it was
// handed. Its snapshot is that list, so a node restored from a snapshot still
// knows its full history, and the checker can compare histories at the end.
import { readAll, type LogEntry, type StateMachine } from '../../src/log/state-machine.js';
import { position, type Applied } from './log-checker.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface MachineObserver {
  apply(index: number, offset: number, term: number, payload: string): void;
  restore(index: number, records: Applied[]): void;
}

export class RecordMachine implements StateMachine<string> {
  records: Applied[] = [];

  constructor(private readonly observer: MachineObserver) {}

  apply(e: LogEntry): string {
    const payload = dec.decode(e.data);
    this.observer.apply(e.index, e.offset, e.term, payload);
    this.records.push([position(e.index, e.offset), payload]);
    return `${e.index}.${e.offset}:${payload}`;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.records));
  }

  async restore(data: AsyncIterable<Uint8Array>, meta: { index: number; term: number }): Promise<void> {
    this.records = JSON.parse(dec.decode(await readAll(data))) as Applied[];
    this.observer.restore(meta.index, this.records);
  }
}
