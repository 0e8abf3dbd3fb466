#!/usr/bin/env node
// ONNX Runtime session options and graph variants for the dlib ResNet's ONNX conversion (issue 11; the table
// "ONNX Runtime session options tried" in BENCHMARKS.md): one session, one intra-op thread, random chips,
// network only, faces/s at batch 1, 8, 16; TF.js wasm in the same process for reference. Asserts nothing.
// Variants are made in memory from the installed file (`faceflow models pull faceapi-recognition-onnx`):
// an NHWC input (a Transpose first) and the normalisation inside the graph (Sub, Div).
// usage (after `npm run build`): node scripts/dev/dlib-onnx-options.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => path.join(root, 'packages/engine/dist', p);
const W = await import(dist('registry/onnx-writer.js'));
const { resolveModel } = await import(dist('registry/index.js'));
const require = createRequire(path.join(root, 'packages/engine/package.json'));
const ort = require('onnxruntime-node');
const protobuf = require('protobufjs');
const base = readFileSync((await resolveModel('faceapi-recognition-onnx')).main);
function fields(buf) { const r = protobuf.Reader.create(buf); const out = []; while (r.pos < r.len) { const s = r.pos; const tag = r.uint32(); const no = tag >>> 3, wire = tag & 7; let payload; if (wire === 2) payload = r.bytes(); else r.skipType(wire); out.push({ no, raw: buf.subarray(s, r.pos), payload }); } return out; }
function prepend(nodes, inits, newInput) {
  const parts = [];
  for (const f of fields(base)) {
    if (f.no !== 7) { parts.push(f.raw); continue; }
    const g = [...nodes.map((n) => W.lengthDelimited(1, n))];
    for (const gf of fields(f.payload)) if (gf.no !== 11) g.push(gf.raw);
    for (const t of inits) g.push(W.lengthDelimited(5, t));
    g.push(W.lengthDelimited(11, newInput));
    parts.push(W.lengthDelimited(7, Buffer.concat(g)));
  }
  return Buffer.concat(parts);
}
const nhwc = prepend([W.nodeProto('Transpose', ['x'], ['input'], 't', [{ name: 'perm', ints: [0, 3, 1, 2] }])], [], W.valueInfoProto('x', ['N', 150, 150, 3]));
const meanIn = prepend([W.nodeProto('Sub', ['x', 'mean_rgb'], ['xs'], 's'), W.nodeProto('Div', ['xs', 'k255'], ['input'], 'd')],
  [W.tensorProto('mean_rgb', [1, 3, 1, 1], Float32Array.from([122.782, 117.001, 104.298])), W.tensorProto('k255', [1], Float32Array.from([255]))], W.valueInfoProto('x', ['N', 3, 150, 150]));
const N = 64, P = 150 * 150;
const xs = Float32Array.from({ length: N * 3 * P }, (_, i) => ((i * 2654435761) >>> 9) % 256 / 255 - 0.5);
async function bench(label, model, opts, shape) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3, ...opts });
  const name = s.inputNames[0];
  for (const b of [1, 8, 16]) {
    const run = async () => { for (let i = 0; i < N; i += b) await s.run({ [name]: new ort.Tensor('float32', xs.subarray(i * 3 * P, (i + b) * 3 * P), shape(b)) }); };
    await run();
    const t = process.hrtime.bigint(); await run(); await run();
    const sec = Number(process.hrtime.bigint() - t) / 1e9;
    console.log(`${label} batch ${b}: ${(2 * N / sec).toFixed(1)} faces/s`);
  }
  await s.release();
}
const nchw = (b) => [b, 3, 150, 150];
await bench('all NCHW', base, { graphOptimizationLevel: 'all' }, nchw);
await bench('extended NCHW', base, { graphOptimizationLevel: 'extended' }, nchw);
await bench('basic NCHW', base, { graphOptimizationLevel: 'basic' }, nchw);
await bench('all NHWC input (Transpose in graph)', nhwc, { graphOptimizationLevel: 'all' }, (b) => [b, 150, 150, 3]);
await bench('all mean/255 in graph', meanIn, { graphOptimizationLevel: 'all' }, nchw);
await bench('all, no spinning', base, { graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } }, nchw);
const { initRuntime } = await import(dist('runtime/tf.js'));
const { DlibResNetEmbedder } = await import(dist('models/embedder.js'));
await initRuntime({ backend: 'wasm' });
for (const b of [1, 8, 16]) {
  const e = await DlibResNetEmbedder.load({ manifestPath: (await resolveModel('faceapi-recognition')).main, batchSize: b });
  const chips = Array.from({ length: N }, (_, k) => Uint8Array.from({ length: P * 3 }, (_, i) => (i + k) % 256));
  await e.run(chips);
  const t = process.hrtime.bigint(); await e.run(chips); await e.run(chips);
  console.log(`tfjs wasm batch ${b}: ${(2 * N / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(1)} faces/s`);
  e.dispose();
}
