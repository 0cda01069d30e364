// Prints, as JSON, every type in src/ that a declaration exported by the package's root or a
// subpath names, directly or through another, and that no entry point exports. Run in a child
// by exported-types.test.ts: building the program takes seconds of CPU in one turn.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src') + '/';

/** src/index.ts and each subpath's index, from package.json's exports map. */
function entryPoints(): string[] {
  const exports = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string }> }).exports;
  return Object.values(exports)
    .flatMap((e) => (typeof e === 'object' && e.types !== undefined ? [e.types] : []))
    .map((d) => join(ROOT, d.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts')));
}

function hidden(node: ts.Node): boolean {
  const mods = ts.canHaveModifiers(node) ? (ts.getModifiers(node) ?? []) : [];
  if (mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) return true;
  if ('name' in node && node.name !== undefined && ts.isPrivateIdentifier(node.name as ts.Node)) return true;
  return ts.getJSDocTags(node).some((t) => t.tagName.text === 'internal');
}

/** `Name (in src/file.ts, named by Other)` for every src/ type a public declaration reaches and no entry point exports. */
function unexportedTypes(): string[] {
  const entries = entryPoints();
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    types: ['node'],
  });
  const checker = program.getTypeChecker();
  const resolve = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set<ts.Symbol>();
  for (const entry of entries) {
    const file = program.getSourceFile(entry);
    if (file === undefined) throw new Error(`${entry} is not in the program`);
    for (const s of checker.getExportsOfModule(checker.getSymbolAtLocation(file)!)) exported.add(resolve(s));
  }
  const missing = new Set<string>();
  const walked = new Set<ts.Symbol>();
  const queue = [...exported];
  const named = (node: ts.Node, by: ts.Symbol): void => {
    const s = checker.getSymbolAtLocation(node);
    if (s === undefined) return;
    const target = resolve(s);
    if (target.flags & ts.SymbolFlags.TypeParameter) return;
    const decl = target.declarations?.[0];
    if (decl === undefined || !decl.getSourceFile().fileName.startsWith(SRC)) return;
    if (!exported.has(target)) missing.add(`${target.name} (in ${decl.getSourceFile().fileName.slice(SRC.length)}, named by ${by.name})`);
    if (!walked.has(target)) queue.push(target);
  };
  const visit = (node: ts.Node, by: ts.Symbol): void => {
    if (hidden(node)) return;
    if (ts.isTypeReferenceNode(node)) named(node.typeName, by);
    else if (ts.isExpressionWithTypeArguments(node)) named(node.expression, by);
    else if (ts.isTypeQueryNode(node)) named(node.exprName, by);
    // What a declaration does is not what it declares: bodies and initializers are not in the .d.ts.
    if (ts.isBlock(node) || (node.parent !== undefined && 'initializer' in node.parent && node.parent.initializer === node && !ts.isEnumMember(node.parent)))
      return;
    ts.forEachChild(node, (child) => visit(child, by));
  };
  while (queue.length > 0) {
    const s = queue.pop()!;
    if (walked.has(s)) continue;
    walked.add(s);
    for (const d of s.declarations ?? []) if (d.getSourceFile().fileName.startsWith(SRC)) visit(d, s);
  }
  return [...missing].sort();
}

process.stdout.write(JSON.stringify(unexportedTypes()));
