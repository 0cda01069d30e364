/** A committed record as the application sees it. */
export interface LogEntry {
  index: number;
  term: number;
  data: Uint8Array;
}

/**
 * The application's state, fed committed records in order. `apply` must be
 * deterministic: every node applies the same records and must reach the same state.
 */
export interface StateMachine<R = unknown> {
  /** Called once per committed record, in index order. Its return value resolves the append on the node that made it. */
  apply(entry: LogEntry): R;
  /** The whole state as of the last applied record. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot taken at `meta.index`. */
  restore(data: Uint8Array, meta: { index: number; term: number }): void;
}

/** The default: keeps no state, so a log without a state machine is a plain durable log. */
export class NullStateMachine implements StateMachine<undefined> {
  apply(): undefined {
    return undefined;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(): void {}
}
