/**
 * face-api's 68-point landmark net (FaceLandmark68Net) converted to ONNX by faceflow's own code (issue 11,
 * pipeline latency: the last model of a new face that ran on TF.js WebAssembly). `faceflow models pull
 * faceapi-landmarks68-onnx` runs it on the verified files of the `faceapi-landmarks68` entry; the registry
 * checks the result's sha256 like any downloaded file.
 *
 * The network, as @vladmandic/face-api builds it (src/faceFeatureExtractor/FaceFeatureExtractor.ts,
 * denseBlock.ts denseBlock4, common/depthwiseSeparableConv.ts, faceProcessor/FaceProcessor.ts): input
 * (RGB - FACE_API_MEAN_RGB) / 255 at 112x112; four dense blocks, each
 *   out1 = relu(conv0(x))  (stride 2: dense0 a plain 3x3 conv + bias, dense1-3 depthwise-separable + bias)
 *   out2 = sep(out1); out3 = sep(relu(out1 + out2)); out4 = sep(relu(out1 + (out2 + out3)))
 *   out  = relu(out1 + (out2 + (out3 + out4)))
 * where sep is TF's separableConv2d (3x3 depthwise, then 1x1 pointwise) + bias, 'same' padding; then a
 * 7x7/2 'valid' average pool (7x7 -> 1x1), and the fully connected layer [256, 136] + bias: 68 (x, y) in
 * [0, 1] of the square input. The weights are the float32 values TF.js decodes (face-api-weights.ts), not
 * folded (depthwise and pointwise stay two convs, as TF.js runs them), and the additions keep TF's order,
 * so the points equal the TF.js ones to float precision (models/landmarks-onnx.test.ts measures it).
 *
 * The graph: NCHW input [N,3,112,112] already normalised, output [N,136]; opset 17; 'same' padding as TF
 * computes it (stride 2 on an even size: the one pixel of padding at the bottom and right only).
 */
import { FaceflowError } from '@faceflow/shared';
import { decodeFaceApiWeights, depthwiseToOihw, notTheManifest, tfPadding, toOihw, type Weight } from './face-api-weights.js';
import { modelProto, nodeProto, tensorProto, valueInfoProto, type Attribute } from './onnx-writer.js';

export const LANDMARK68_INPUT = 112;
export const LANDMARK68_POINTS = 68;
/** What the converted file's graph calls its input and output. */
export const LANDMARK68_ONNX_INPUT = 'input';
export const LANDMARK68_ONNX_OUTPUT = 'landmarks';

/** A conv of the net: dense0/conv0 is a plain conv (filter HWIO), every other one depthwise-separable. */
export type Landmark68Conv =
  | { kind: 'plain'; filter: Weight; bias: Weight }
  | { kind: 'separable'; depthwise: Weight; pointwise: Weight; bias: Weight };

export interface Landmark68Weights {
  /** dense0..dense3, each [conv0, conv1, conv2, conv3] */
  dense: Landmark68Conv[][];
  /** [256, 136] */
  fcWeights: Weight;
  /** [136] */
  fcBias: Weight;
}

const MANIFEST = { network: '68-point landmark net', model: 'faceapi-landmarks68' };

/** Reads face-api's face_landmark_68_model weights (float32, as TF.js decodes them). */
export async function readLandmark68(manifestPath: string): Promise<Landmark68Weights> {
  const w = await decodeFaceApiWeights(manifestPath, MANIFEST);
  const take = (name: string, rank: number): Weight => {
    const t = w.get(name);
    if (!t) throw notTheManifest(manifestPath, MANIFEST, `no "${name}"`);
    if (t.shape.length !== rank) throw notTheManifest(manifestPath, MANIFEST, `${name} is [${t.shape.join(',')}], expected rank ${rank}`);
    return t;
  };
  const dense = [0, 1, 2, 3].map((d) =>
    [0, 1, 2, 3].map((c): Landmark68Conv => {
      const p = `dense${d}/conv${c}`;
      if (d === 0 && c === 0) return { kind: 'plain', filter: take(`${p}/filters`, 4), bias: take(`${p}/bias`, 1) };
      return { kind: 'separable', depthwise: take(`${p}/depthwise_filter`, 4), pointwise: take(`${p}/pointwise_filter`, 4), bias: take(`${p}/bias`, 1) };
    }),
  );
  const fcWeights = take('fc/weights', 2);
  const fcBias = take('fc/bias', 1);
  if (fcWeights.shape.join(',') !== `256,${2 * LANDMARK68_POINTS}` || fcBias.data.length !== 2 * LANDMARK68_POINTS) {
    throw notTheManifest(manifestPath, MANIFEST, `fc is [${fcWeights.shape.join(',')}] + [${fcBias.shape.join(',')}], expected [256,136] + [136]`);
  }
  return { dense, fcWeights, fcBias };
}

/**
 * The ONNX model bytes of FaceLandmark68Net from face-api's weights manifest. Deterministic: the same
 * weights give the same bytes (no timestamps, no versions but the converter's own).
 */
export async function convertLandmark68ToOnnx(manifestPath: string): Promise<Uint8Array> {
  const net = await readLandmark68(manifestPath);
  const nodes: Uint8Array[] = [];
  const inits: Uint8Array[] = [];
  let size = LANDMARK68_INPUT;
  let channels = 3;
  const ints = (name: string, v: number[]): Attribute => ({ name, ints: v });
  const convNode = (inputs: string[], y: string, k: number, stride: number, group: number, pd: { before: number; after: number }) =>
    nodeProto('Conv', inputs, [y], `${y}.Conv`, [
      ints('dilations', [1, 1]), { name: 'group', int: group }, ints('kernel_shape', [k, k]),
      // ONNX pads: [top, left, bottom, right]; TF's 'same' puts the odd pixel at the bottom and right
      ints('pads', [pd.before, pd.before, pd.after, pd.after]), ints('strides', [stride, stride]),
    ]);
  const mismatch = (name: string, takes: number) => new FaceflowError('MODEL_LOAD', `68-point landmark net: ${name} takes ${takes} channels, the layer before gives ${channels}`);

  /** conv (+ bias), 'same' padding; returns the output's name */
  const conv = (x: string, p: Landmark68Conv, name: string, stride: number): string => {
    if (p.kind === 'plain') {
      const [k, , ci, co] = p.filter.shape as [number, number, number, number];
      if (ci !== channels || p.bias.data.length !== co) throw mismatch(name, ci);
      const pd = tfPadding(size, k, stride, 'same');
      inits.push(tensorProto(`${name}.W`, [co, ci, k, k], toOihw(p.filter)), tensorProto(`${name}.B`, [co], p.bias.data));
      nodes.push(convNode([x, `${name}.W`, `${name}.B`], name, k, stride, 1, pd));
      size = pd.out;
      channels = co;
      return name;
    }
    const [k, , c, m] = p.depthwise.shape as [number, number, number, number];
    const [, , pi, co] = p.pointwise.shape as [number, number, number, number];
    if (c !== channels || pi !== c * m || p.bias.data.length !== co) throw mismatch(name, c);
    const pd = tfPadding(size, k, stride, 'same');
    inits.push(tensorProto(`${name}.depthwise.W`, [c * m, 1, k, k], depthwiseToOihw(p.depthwise)));
    nodes.push(convNode([x, `${name}.depthwise.W`], `${name}.depthwise`, k, stride, c, pd));
    inits.push(tensorProto(`${name}.pointwise.W`, [co, c * m, 1, 1], toOihw(p.pointwise)), tensorProto(`${name}.B`, [co], p.bias.data));
    nodes.push(convNode([`${name}.depthwise`, `${name}.pointwise.W`, `${name}.B`], name, 1, 1, 1, { before: 0, after: 0 }));
    size = pd.out;
    channels = co;
    return name;
  };
  const add = (a: string, b: string, y: string): string => {
    nodes.push(nodeProto('Add', [a, b], [y], `${y}.Add`));
    return y;
  };
  const relu = (x: string, y: string): string => {
    nodes.push(nodeProto('Relu', [x], [y], `${y}.Relu`));
    return y;
  };

  let h = LANDMARK68_ONNX_INPUT;
  net.dense.forEach((convs, d) => {
    const b = `dense${d}`;
    const [c0, c1, c2, c3] = convs as [Landmark68Conv, Landmark68Conv, Landmark68Conv, Landmark68Conv];
    const out1 = relu(conv(h, c0, `${b}.conv0`, 2), `${b}.out1`);
    const out2 = conv(out1, c1, `${b}.conv1`, 1);
    const in3 = relu(add(out1, out2, `${b}.sum12`), `${b}.in3`);
    const out3 = conv(in3, c2, `${b}.conv2`, 1);
    const in4 = relu(add(out1, add(out2, out3, `${b}.sum23`), `${b}.sum123`), `${b}.in4`);
    const out4 = conv(in4, c3, `${b}.conv3`, 1);
    h = relu(add(out1, add(out2, add(out3, out4, `${b}.sum34`), `${b}.sum234`), `${b}.sum1234`), b);
  });
  const pool = tfPadding(size, 7, 2, 'valid');
  if (pool.out !== 1 || channels !== 256) throw new FaceflowError('MODEL_LOAD', `68-point landmark net: the features are ${channels}x${size}x${size}, expected 256x7x7`);
  nodes.push(nodeProto('AveragePool', [h], ['pool'], 'pool.AveragePool', [ints('kernel_shape', [7, 7]), ints('pads', [0, 0, 0, 0]), ints('strides', [2, 2])]));
  nodes.push(nodeProto('Flatten', ['pool'], ['features'], 'features.Flatten', [{ name: 'axis', int: 1 }]));
  inits.push(tensorProto('fc.W', net.fcWeights.shape, net.fcWeights.data), tensorProto('fc.B', net.fcBias.shape, net.fcBias.data));
  nodes.push(nodeProto('MatMul', ['features', 'fc.W'], ['fc'], 'fc.MatMul'));
  add('fc', 'fc.B', LANDMARK68_ONNX_OUTPUT);

  return modelProto({
    irVersion: 8,
    opset: 17,
    producerName: 'faceflow',
    producerVersion: 'landmarks68-onnx 1',
    docString: 'face-api FaceLandmark68Net (@vladmandic/face-api face_landmark_68_model weights); input (RGB - [122.782, 117.001, 104.298]) / 255, NCHW 112x112; output 136 floats: 68 (x, y) in [0, 1] of the input',
    graph: {
      name: 'face_landmark_68',
      nodes,
      initializers: inits,
      inputs: [valueInfoProto(LANDMARK68_ONNX_INPUT, ['N', 3, LANDMARK68_INPUT, LANDMARK68_INPUT])],
      outputs: [valueInfoProto(LANDMARK68_ONNX_OUTPUT, ['N', 2 * LANDMARK68_POINTS])],
    },
  });
}
