// Parses a Mermaid flowchart from stdin with the real `mermaid` package
// (installed by scripts/servers/doctools.sh under MERMAID_DIR) and prints
// what its parser built: {"vertices":[id...],"edges":[[from,to]...],
// "subgraphs":[{"title","nodes"}...]}. A syntax error exits 1 with
// mermaid's message. mermaid needs a DOM even to parse; jsdom gives one.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.MERMAID_DIR;
const require = createRequire(join(dir, 'package.json'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import(pathToFileURL(join(dir, 'node_modules/mermaid/dist/mermaid.core.mjs')).href);

const text = readFileSync(0, 'utf8');
try {
  await mermaid.parse(text);
  const { db } = await mermaid.mermaidAPI.getDiagramFromText(text);
  const out = {
    vertices: [...db.getVertices().values()].map((v) => ({ id: v.id, text: v.text })),
    edges: db.getEdges().map((e) => [e.start, e.end]),
    subgraphs: db.getSubGraphs().map((s) => ({ title: s.title, nodes: s.nodes })),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (e) {
  process.stderr.write(`mermaid: ${e.message}\n`);
  process.exit(1);
}
