/**
 * The dlib ResNet (dlib_face_recognition_resnet_model_v1, King 2017) from face-api's TF.js weights, and its
 * conversion to ONNX by faceflow's own code (issue 11 step 1: "the existing dlib embedder on ONNX Runtime if
 * a conversion from the shipped TF.js weights is reproducible from registry packages"; no Python, no
 * tf2onnx). `faceflow models pull faceapi-recognition-onnx` runs it on the verified files of the
 * `faceapi-recognition` entry; the registry checks the result's sha256 like any downloaded file.
 *
 * One definition of the network for both runtimes: `readDlibResNet` decodes the weights exactly as TF.js's
 * `io.decodeWeights` does (uint8 -> float32 as q * scale + min) and folds each dlib "conv + bias +
 * affine(scale) + relu" into one conv (W' = W * s, b' = b * s + t, each product and sum rounded to float32
 * as TF.js's float32 kernels round them), so the TF.js embedder (models/embedder.ts) and the ONNX file
 * start from the same float32 weights, bit for bit.
 *
 * The graph (NCHW, input [N,3,150,150] already normalised as (x - DLIB_MEAN_RGB) / 255, output [N,128] not
 * L2-normalised; opset 17): the stem conv 7x7/2 'valid' + relu, max pool 3x3/2; residual blocks of two 3x3
 * convs ('same' padding reproduced as TF computes it: total (out-1)*stride + k - in, the odd pixel at the
 * end); dlib's downsampling blocks: the first conv 3x3/2 'valid', the shortcut a 2x2/2 average pool
 * zero-padded in channels, the residual zero-padded at the bottom and right where the strided conv comes
 * out one short of the pool (8 -> 3 vs 4, 4 -> 1 vs 2), as face-api pads it; global mean; the 256x128 fc.
 */
import { FaceflowError } from '@faceflow/shared';
import { decodeFaceApiWeights, FACE_API_MEAN_RGB, notTheManifest, tfPadding, toOihw, type Weight } from './face-api-weights.js';
import { modelProto, nodeProto, tensorProto, valueInfoProto, type Attribute } from './onnx-writer.js';

export const DLIB_INPUT = 150;
export const DLIB_DIM = 128;
/** face-api's mean RGB for this network (subtracted, then divided by 255) */
export const DLIB_MEAN_RGB = FACE_API_MEAN_RGB;

/** The residual blocks after the stem, in order; true: a downsampling block. */
export const DLIB_RESIDUAL_BLOCKS: ReadonlyArray<readonly [string, boolean]> = [
  ['conv32_1', false], ['conv32_2', false], ['conv32_3', false],
  ['conv64_down', true], ['conv64_1', false], ['conv64_2', false], ['conv64_3', false],
  ['conv128_down', true], ['conv128_1', false], ['conv128_2', false],
  ['conv256_down', true], ['conv256_1', false], ['conv256_2', false],
  ['conv256_down_out', true],
];

export type { Weight };

/** One folded conv: filter in TF's HWIO layout [kh, kw, in, out], bias [out]. */
export interface FoldedConv {
  filter: Weight;
  bias: Weight;
}

export interface DlibResNetWeights {
  stem: FoldedConv;
  blocks: Array<{ name: string; down: boolean; conv1: FoldedConv; conv2: FoldedConv }>;
  /** [256, 128] */
  fc: Weight;
}

const DLIB_MANIFEST = { network: 'dlib ResNet', model: 'faceapi-recognition' };
const bad = (file: string, why: string): FaceflowError => notTheManifest(file, DLIB_MANIFEST, why);

/** Reads the TF.js weights and folds each conv with its affine layer (float32 arithmetic, as TF.js). */
export async function readDlibResNet(manifestPath: string): Promise<DlibResNetWeights> {
  const w = await decodeFaceApiWeights(manifestPath, DLIB_MANIFEST);
  const take = (name: string): Weight => {
    const t = w.get(name);
    if (!t) throw bad(manifestPath, `no "${name}"`);
    return t;
  };
  const fold = (prefix: string): FoldedConv => {
    const filter = take(`${prefix}/conv/filters`);
    const bias = take(`${prefix}/conv/bias`);
    const s = take(`${prefix}/scale/weights`).data;
    const t = take(`${prefix}/scale/biases`).data;
    const out = filter.shape[3]!;
    if (filter.shape.length !== 4 || bias.data.length !== out || s.length !== out || t.length !== out) throw bad(manifestPath, `${prefix} has inconsistent shapes`);
    const f = new Float32Array(filter.data.length);
    for (let i = 0; i < f.length; i++) f[i] = Math.fround(filter.data[i]! * s[i % out]!);
    const b = new Float32Array(out);
    for (let o = 0; o < out; o++) b[o] = Math.fround(Math.fround(bias.data[o]! * s[o]!) + t[o]!);
    return { filter: { shape: filter.shape, data: f }, bias: { shape: [out], data: b } };
  };
  const fc = take('fc');
  if (fc.shape.join(',') !== `256,${DLIB_DIM}`) throw bad(manifestPath, `fc is [${fc.shape.join(',')}], expected [256,${DLIB_DIM}]`);
  return {
    stem: fold('conv32_down'),
    blocks: DLIB_RESIDUAL_BLOCKS.map(([name, down]) => ({ name, down, conv1: fold(`${name}/conv1`), conv2: fold(`${name}/conv2`) })),
    fc,
  };
}

/** What the converted file's graph calls its input and output. */
export const DLIB_ONNX_INPUT = 'input';
export const DLIB_ONNX_OUTPUT = 'embedding';

/**
 * The ONNX model bytes of the dlib ResNet from face-api's weights manifest. Deterministic: the same
 * weights give the same bytes (no timestamps, no versions but the converter's own).
 */
export async function convertDlibResNetToOnnx(manifestPath: string): Promise<Uint8Array> {
  const net = await readDlibResNet(manifestPath);
  const nodes: Uint8Array[] = [];
  const inits: Uint8Array[] = [];
  let size = DLIB_INPUT;
  let channels = 3;
  const ints = (name: string, v: number[]): Attribute => ({ name, ints: v });

  const conv = (x: string, p: FoldedConv, name: string, stride: number, pad: 'same' | 'valid', relu: boolean): string => {
    const [k, , ci, co] = p.filter.shape as [number, number, number, number];
    if (ci !== channels) throw new FaceflowError('MODEL_LOAD', `dlib ResNet: ${name} takes ${ci} channels, the layer before gives ${channels}`);
    const pd = tfPadding(size, k, stride, pad);
    inits.push(tensorProto(`${name}.W`, [co, ci, k, k], toOihw(p.filter)), tensorProto(`${name}.B`, [co], p.bias.data));
    const y = relu ? `${name}.conv` : name;
    nodes.push(
      nodeProto('Conv', [x, `${name}.W`, `${name}.B`], [y], `${name}.Conv`, [
        ints('dilations', [1, 1]), { name: 'group', int: 1 }, ints('kernel_shape', [k, k]), ints('pads', [pd.before, pd.before, pd.after, pd.after]), ints('strides', [stride, stride]),
      ]),
    );
    if (relu) nodes.push(nodeProto('Relu', [y], [name], `${name}.Relu`));
    size = pd.out;
    channels = co;
    return name;
  };
  const padConst = (x: string, name: string, pads: number[]): string => {
    inits.push(tensorProto(`${name}.pads`, [8], BigInt64Array.from(pads.map(BigInt))));
    nodes.push(nodeProto('Pad', [x, `${name}.pads`], [name], `${name}.Pad`, []));
    return name;
  };

  let h = conv(DLIB_ONNX_INPUT, net.stem, 'conv32_down', 2, 'valid', true);
  nodes.push(nodeProto('MaxPool', [h], ['pool'], 'pool.MaxPool', [ints('kernel_shape', [3, 3]), ints('pads', [0, 0, 0, 0]), ints('strides', [2, 2])]));
  h = 'pool';
  size = tfPadding(size, 3, 2, 'valid').out;
  for (const b of net.blocks) {
    const inSize = size;
    const inChannels = channels;
    if (!b.down) {
      let y = conv(h, b.conv1, `${b.name}.conv1`, 1, 'same', true);
      y = conv(y, b.conv2, `${b.name}.conv2`, 1, 'same', false);
      nodes.push(nodeProto('Add', [y, h], [`${b.name}.add`], `${b.name}.Add`), nodeProto('Relu', [`${b.name}.add`], [b.name], `${b.name}.Relu`));
      h = b.name;
      continue;
    }
    let y = conv(h, b.conv1, `${b.name}.conv1`, 2, 'valid', true);
    y = conv(y, b.conv2, `${b.name}.conv2`, 1, 'same', false);
    let pooled = `${b.name}.pool`;
    nodes.push(nodeProto('AveragePool', [h], [pooled], `${b.name}.AveragePool`, [ints('kernel_shape', [2, 2]), ints('pads', [0, 0, 0, 0]), ints('strides', [2, 2])]));
    const poolSize = tfPadding(inSize, 2, 2, 'valid').out;
    if (poolSize !== size) {
      // NCHW pads: [N, C, H, W begins, then N, C, H, W ends]
      y = padConst(y, `${b.name}.conv2.padded`, [0, 0, 0, 0, 0, 0, poolSize - size, poolSize - size]);
      size = poolSize;
    }
    if (inChannels !== channels) pooled = padConst(pooled, `${b.name}.pool.padded`, [0, 0, 0, 0, 0, channels - inChannels, 0, 0]);
    nodes.push(nodeProto('Add', [pooled, y], [`${b.name}.add`], `${b.name}.Add`), nodeProto('Relu', [`${b.name}.add`], [b.name], `${b.name}.Relu`));
    h = b.name;
  }
  nodes.push(nodeProto('ReduceMean', [h], ['mean'], 'mean.ReduceMean', [ints('axes', [2, 3]), { name: 'keepdims', int: 0 }]));
  inits.push(tensorProto('fc', net.fc.shape, net.fc.data));
  nodes.push(nodeProto('MatMul', ['mean', 'fc'], [DLIB_ONNX_OUTPUT], 'fc.MatMul'));

  return modelProto({
    irVersion: 8,
    opset: 17,
    producerName: 'faceflow',
    producerVersion: 'dlib-resnet-onnx 1',
    docString: 'dlib_face_recognition_resnet_model_v1 (Davis King) from @vladmandic/face-api face_recognition_model weights; input (RGB - [122.782, 117.001, 104.298]) / 255, NCHW 150x150; output 128 floats, not L2-normalised',
    graph: {
      name: 'dlib_resnet',
      nodes,
      initializers: inits,
      inputs: [valueInfoProto(DLIB_ONNX_INPUT, ['N', 3, DLIB_INPUT, DLIB_INPUT])],
      outputs: [valueInfoProto(DLIB_ONNX_OUTPUT, ['N', DLIB_DIM])],
    },
  });
}
