#!/usr/bin/env node
// Rewrites imports of '@faceflow/engine' in the given folders so that each name comes from the root when the
// curated root exports it, else from the engine subpath that exports it (issue 13 step 1: a root of <40 names,
// the rest behind subpaths). Idempotent; run after moving a name between the root and a subpath.
// usage: node scripts/dev/engine-imports.mjs packages/cli services bench test
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const engineSrc = path.join(root, 'packages/engine/src');
// priority: a name exported by several subpaths comes from the first (the lowest layer that has it)
const SUBPATHS = ['match', 'image', 'recognize', 'segment', 'redact', 'models', 'runtime', 'registry', 'search', 'eval', 'train'];

const entries = { '': path.join(engineSrc, 'index.ts'), ...Object.fromEntries(SUBPATHS.map((s) => [s, path.join(engineSrc, s, 'index.ts')])) };
const program = ts.createProgram(Object.values(entries), { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true });
const checker = program.getTypeChecker();
const exportsOf = {};
for (const [sub, file] of Object.entries(entries)) {
  const sf = program.getSourceFile(file);
  const sym = checker.getSymbolAtLocation(sf);
  exportsOf[sub] = new Set(checker.getExportsOfModule(sym).map((s) => s.name));
}
const where = (name) => {
  if (exportsOf[''].has(name)) return '@faceflow/engine';
  for (const s of SUBPATHS) if (exportsOf[s].has(name)) return `@faceflow/engine/${s}`;
  return undefined;
};

function tsFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

let changed = 0;
const missing = [];
for (const dir of process.argv.slice(2)) {
  for (const file of tsFiles(path.resolve(root, dir))) {
    const text = fs.readFileSync(file, 'utf8');
    if (!/from '@faceflow\/engine(\/[a-z]+)?'/.test(text)) continue;
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const edits = [];
    for (const st of sf.statements) {
      const isImport = ts.isImportDeclaration(st);
      const isExport = ts.isExportDeclaration(st);
      if (!isImport && !isExport) continue;
      const spec = st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) ? st.moduleSpecifier.text : undefined;
      if (!spec || !/^@faceflow\/engine(\/[a-z]+)?$/.test(spec) || spec === '@faceflow/engine/match' && file.includes(`${path.sep}services${path.sep}matcher${path.sep}`)) continue;
      let elements, typeOnly, kw;
      if (isImport) {
        const nb = st.importClause?.namedBindings;
        if (!nb || !ts.isNamedImports(nb) || st.importClause.name) continue;
        elements = nb.elements; typeOnly = st.importClause.isTypeOnly; kw = 'import';
      } else {
        if (!st.exportClause || !ts.isNamedExports(st.exportClause)) continue;
        elements = st.exportClause.elements; typeOnly = st.isTypeOnly; kw = 'export';
      }
      const groups = new Map();
      for (const el of elements) {
        const name = (el.propertyName ?? el.name).text;
        let target = where(name);
        if (!target) { missing.push(`${path.relative(root, file)}: ${name}`); target = spec; }
        const txt = (typeOnly || el.isTypeOnly ? 'type ' : '') + (el.propertyName ? `${el.propertyName.text} as ${el.name.text}` : el.name.text);
        if (!groups.has(target)) groups.set(target, []);
        groups.get(target).push(txt);
      }
      const order = [...groups.keys()].sort((a, b) => (a === '@faceflow/engine' ? -1 : b === '@faceflow/engine' ? 1 : a.localeCompare(b)));
      const repl = order.map((t) => `${kw} { ${groups.get(t).join(', ')} } from '${t}';`).join('\n');
      edits.push([st.getStart(sf), st.getEnd(), repl]);
    }
    if (!edits.length) continue;
    let out = text;
    for (const [a, b, r] of edits.sort((x, y) => y[0] - x[0])) out = out.slice(0, a) + r + out.slice(b);
    if (out !== text) { fs.writeFileSync(file, out); changed++; }
  }
}
console.error(`engine-imports: ${changed} files rewritten`);
if (missing.length) { console.error(`names no engine entry exports:\n  ${missing.join('\n  ')}`); process.exitCode = 1; }
