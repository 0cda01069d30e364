// A command killed before each change it makes, in turn: the changes are those of a reference
// run (logged under the fault library), each made the rule that kills a later run before it.
import type { FaultOp, FaultOpName, FaultRule } from './run-with-faults.js';

export interface KillStep {
  op: FaultOpName;
  /** The path of the change, the run's root as '@' and the parts of names drawn at random as '*'. */
  glob: string;
  /** Calls of the same kind on matching paths that the run made before this one. */
  after: number;
  /** The call as the reference run made it, for messages. */
  what: string;
}

const RULE_OPS: Record<string, FaultOpName> = { write: 'write', pwrite: 'write', writev: 'write', pwritev: 'write', fsync: 'sync', fdatasync: 'sync' };

function ruleOp(op: string): FaultOpName | undefined {
  return RULE_OPS[op] ?? (['rename', 'unlink', 'mkdir', 'fallocate', 'direct'].includes(op) ? (op as FaultOpName) : undefined);
}

/** `path` with the parts of names drawn at random as '*': a restore's staging name, a segment's, a temporary's. */
function generic(path: string): string {
  return path
    .replace(/creating-[^/]+/, 'creating-*')
    .replace(/-[0-9a-f]{12}\.wal$/, '-*.wal')
    .replace(/\.tmp[^/]*$/, '.tmp*');
}

function matches(glob: string, path: string): boolean {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(path);
}

/** Every change of a reference run made in `root`. */
export function killSteps(ops: readonly FaultOp[], root: string): KillStep[] {
  return ops.flatMap((o, k) => {
    const op = ruleOp(o.op);
    if (op === undefined) return [];
    const glob = generic(o.path).replace(root, '@');
    const after = ops.slice(0, k).filter((p) => ruleOp(p.op) === op && matches(glob, generic(p.path).replace(root, '@'))).length;
    return [{ op, glob, after, what: `${o.op} ${o.path}` }];
  });
}

/** The rule that kills a run in `root` before `step`. */
export function killBefore(step: KillStep, root: string): FaultRule {
  return { op: step.op, glob: step.glob.replace('@', root), after: step.after, errno: 'KILL' };
}

/**
 * Whether a run in `root` whose calls were `ops` reached `step`. The writer thread zeroes the next
 * segment ahead of need, as its timing allows: a run may finish without a step the reference
 * run took, and must then never have reached it.
 */
export function reached(step: KillStep, ops: readonly FaultOp[], root: string): boolean {
  const glob = step.glob.replace('@', root);
  return ops.filter((p) => ruleOp(p.op) === step.op && matches(glob, generic(p.path))).length > step.after;
}
