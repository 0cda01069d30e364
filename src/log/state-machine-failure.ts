// Whose failure stops the node when the application's state machine is called: what its
// apply(), snapshot() or restore() threw is named as the state machine's, not as a storage
// failure (the operator's first suspect), and raftlog's own errors pass as they are.
import { StorageError } from '../storage/errors.js';
import { WalError } from '../wal/index.js';
import { FatalError, InvalidArgumentError, LogError, SnapshotLimitError } from './errors.js';

export type StateMachineMethod = 'apply' | 'snapshot' | 'restore';

/** What the application's state machine threw, as what stops the node. */
export function stateMachineFailed(method: StateMachineMethod, err: unknown): FatalError {
  return new FatalError(err, `the state machine's ${method}() failed`);
}

/** Whether apply()'s result is a thenable; a `then` getter that throws is the state machine's failure. */
export function isPromise(v: unknown): v is PromiseLike<unknown> {
  if (typeof v !== 'object' || v === null) return false;
  try {
    return typeof (v as Partial<PromiseLike<unknown>>).then === 'function';
  } catch (err) {
    throw stateMachineFailed('apply', err);
  }
}

/**
 * An apply() that returns a promise (an `async apply`) has not applied the record when it
 * returns: the next record and a snapshot would see the state without it, and the append
 * would resolve with a promise. Its rejection is handled here, or it would end the process;
 * a `then` that throws instead is the state machine's failure, and what it threw is the cause
 * its author needs to see.
 */
export function applyReturnedPromise(result: PromiseLike<unknown>): FatalError {
  try {
    result.then(undefined, () => undefined);
  } catch (err) {
    return stateMachineFailed('apply', err);
  }
  return stateMachineFailed('apply', new TypeError('apply() returned a promise: it must apply the record before it returns'));
}

/**
 * Whose failure `err` is, where raftlog's code runs inside the state machine's call (reading
 * the snapshot it restores) or around its stream: raftlog's own coded errors pass as they
 * are, anything else is the state machine's. So are readAll()'s refusals, of the limit the
 * state machine chose or of a bad one: they stop the node as LOG_FATAL naming restore(), not as
 * a storage failure.
 */
export function attribute(method: StateMachineMethod, err: unknown): unknown {
  if (err instanceof SnapshotLimitError || err instanceof InvalidArgumentError) return stateMachineFailed(method, err);
  return err instanceof LogError || err instanceof StorageError || err instanceof WalError ? err : stateMachineFailed(method, err);
}
