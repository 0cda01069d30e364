// The text format of the scenario files in test/raft/testdata: a story told as
// commands, each followed by the transcript it must produce.
//
//   # comments tell the story (kept as they are)
//   command arg key=value key=(1,2,3)
//   ----
//   the expected transcript, up to the next blank line
//
// A transcript never holds a blank line (the environment writes "ok" for an
// empty one), so a blank line always ends it.

export interface Step {
  /** Comment and blank lines before the command, verbatim. */
  preamble: string[];
  command: string;
  /** 1-based line of the command, for error messages. */
  line: number;
  expected: string;
}

export interface Command {
  name: string;
  positional: string[];
  named: Map<string, string[]>;
}

export function parseScript(text: string): Step[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const steps: Step[] = [];
  let preamble: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      preamble.push(l);
      continue;
    }
    const command = l;
    const line = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${line + 1}: expected '----' after the command '${command}'`);
    i += 2;
    const out: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') out.push(lines[i++]!);
    i--; // the blank line (if any) starts the next preamble
    steps.push({ preamble, command, line, expected: out.join('\n') });
    preamble = [];
  }
  if (preamble.length > 0) steps.push({ preamble, command: '', line: lines.length, expected: '' });
  return steps;
}

/** The file again, with each step's transcript replaced by `actual[i]`. */
export function formatScript(steps: Step[], actual: string[]): string {
  const out: string[] = [];
  steps.forEach((s, i) => {
    out.push(...s.preamble);
    if (s.command === '') return;
    out.push(s.command, '----', actual[i]!);
  });
  return out.join('\n') + '\n';
}

/** `name a b key=v key=(1,2)`: positional words, then key=value pairs (a list in parentheses). */
export function parseCommand(line: string): Command {
  const words = line.trim().split(/\s+/);
  const named = new Map<string, string[]>();
  const positional: string[] = [];
  for (const w of words.slice(1)) {
    const eq = w.indexOf('=');
    if (eq < 0) {
      positional.push(w);
      continue;
    }
    const v = w.slice(eq + 1);
    named.set(
      w.slice(0, eq),
      v.startsWith('(') && v.endsWith(')')
        ? v
            .slice(1, -1)
            .split(',')
            .filter((x) => x !== '')
        : [v],
    );
  }
  return { name: words[0]!, positional, named };
}
