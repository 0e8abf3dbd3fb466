/**
 * The 'prelu-as-relu' graph fix (issue 11): PRelu nodes become Relu/Sub/Mul/Add, which ONNX Runtime's CPU
 * provider runs far faster, with the same outputs (a zero's sign aside) for slopes of any sign and size.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { OnnxModel } from '../runtime/onnx.js';
import { applyGraphFixes } from './onnx-graph.js';

const SLOPES = [-0.8, 0.25, 1.12];

/** ModelProto (opset 13): y = PRelu(x, slope) with x [1,3,2,2] and slope [3,1,1] an initializer. */
function preluModel(): Uint8Array {
  const sub = (build: (w: protobuf.Writer) => void): Uint8Array => {
    const w = protobuf.Writer.create();
    build(w);
    return w.finish();
  };
  const valueInfo = (name: string) =>
    sub((w) => {
      w.uint32((1 << 3) | 2).string(name);
      const shape = sub((s) => [1, 3, 2, 2].forEach((d) => s.uint32((1 << 3) | 2).bytes(sub((dim) => dim.uint32(1 << 3).int64(d)))));
      const tensor = sub((t) => t.uint32(1 << 3).int32(1).uint32((2 << 3) | 2).bytes(shape));
      w.uint32((2 << 3) | 2).bytes(sub((t) => t.uint32((1 << 3) | 2).bytes(tensor)));
    });
  const node = sub((w) => w.uint32((1 << 3) | 2).string('x').uint32((1 << 3) | 2).string('slope').uint32((2 << 3) | 2).string('y').uint32((3 << 3) | 2).string('act').uint32((4 << 3) | 2).string('PRelu'));
  const init = sub((w) => {
    for (const d of [3, 1, 1]) w.uint32(1 << 3).int64(d);
    w.uint32(2 << 3).int32(1);
    w.uint32((4 << 3) | 2).fork();
    for (const v of SLOPES) w.float(v);
    w.ldelim();
    w.uint32((8 << 3) | 2).string('slope');
  });
  const graph = sub((w) => w.uint32((1 << 3) | 2).bytes(node).uint32((2 << 3) | 2).string('g').uint32((5 << 3) | 2).bytes(init).uint32((11 << 3) | 2).bytes(valueInfo('x')).uint32((12 << 3) | 2).bytes(valueInfo('y')));
  const opset = sub((w) => w.uint32(2 << 3).int64(13));
  return sub((w) => w.uint32(1 << 3).int64(8).uint32((8 << 3) | 2).bytes(opset).uint32((7 << 3) | 2).bytes(graph));
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runModel(bytes: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const dir = await mkdtemp(join(tmpdir(), 'faceflow-prelu-'));
  dirs.push(dir);
  await writeFile(join(dir, 'm.onnx'), bytes);
  const model = await OnnxModel.load(join(dir, 'm.onnx'), 'prelu-test', { channels: 3, height: 2, width: 2 }, { provider: 'cpu' });
  try {
    return Object.values(await model.run(x, [1, 3, 2, 2]))[0]!.data;
  } finally {
    await model.dispose();
  }
}

describe('graph fix prelu-as-relu', () => {
  it('prelu_as_relu_gives_the_same_outputs_for_negative_and_large_slopes_and_leaves_no_prelu', async () => {
    const original = preluModel();
    const { bytes, changed } = applyGraphFixes(original, ['prelu-as-relu']);
    expect(changed).toEqual({ 'prelu-as-relu': 1 });
    expect(Buffer.from(bytes).includes(Buffer.from('PRelu'))).toBe(false);
    const x = Float32Array.from([3.5, -2, 0, -0.125, 7, -9.75, 1e-3, -1e-3, -0, 100, -100, 0.3]);
    const want = x.map((v, i) => (v > 0 ? v : v * Math.fround(SLOPES[Math.floor(i / 4)]!)));
    const before = await runModel(original, x);
    const after = await runModel(bytes, x);
    // (v + 0: a zero's sign is not a difference)
    const values = (a: Float32Array): number[] => Array.from(a, (v) => v + 0);
    expect(values(before)).toEqual(values(want));
    expect(values(after)).toEqual(values(before));
    // applied again it finds nothing to do
    expect(applyGraphFixes(bytes, ['prelu-as-relu']).changed).toEqual({ 'prelu-as-relu': 0 });
  });
});
