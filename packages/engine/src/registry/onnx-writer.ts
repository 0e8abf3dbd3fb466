/**
 * A small ONNX ModelProto writer (issue 11): the messages faceflow's own converters emit (registry/dlib-onnx.ts)
 * and the nodes a graph fix inserts (onnx-graph.ts), encoded with protobufjs's Writer. No schema is
 * compiled: each field is written by its number from onnx.proto (proto2: repeated scalars unpacked, the
 * encoding onnx.proto declares), in a fixed order, so the same model gives the same bytes on every run.
 *
 * Field numbers (onnx.proto): ModelProto ir_version = 1, producer_name = 2, producer_version = 3,
 * doc_string = 6, graph = 7, opset_import = 8; OperatorSetIdProto domain = 1, version = 2; GraphProto
 * node = 1, name = 2, initializer = 5, input = 11, output = 12; NodeProto input = 1, output = 2, name = 3,
 * op_type = 4, attribute = 5; AttributeProto name = 1, f = 2, i = 3, ints = 8, type = 20 (FLOAT = 1,
 * INT = 2, INTS = 7); TensorProto dims = 1, data_type = 2 (FLOAT = 1, INT64 = 7), name = 8, raw_data = 9
 * (little-endian); ValueInfoProto name = 1, type = 2; TypeProto tensor_type = 1; TypeProto.Tensor
 * elem_type = 1, shape = 2; TensorShapeProto dim = 1; Dimension dim_value = 1, dim_param = 2.
 */
import protobuf from 'protobufjs';

type Bytes = Uint8Array;

const LEN = 2;
const VARINT = 0;
const FIXED32 = 5;

function message(build: (w: protobuf.Writer) => void): Bytes {
  const w = protobuf.Writer.create();
  build(w);
  return w.finish();
}

/** A length-delimited field: tag `no`, wire type 2, then `payload`. */
export function lengthDelimited(no: number, payload: Bytes): Bytes {
  return protobuf.Writer.create().uint32((no << 3) | LEN).bytes(payload).finish();
}

export type Attribute = { name: string } & ({ int: number } | { ints: readonly number[] } | { float: number });

function attributeProto(a: Attribute): Bytes {
  return message((w) => {
    w.uint32((1 << 3) | LEN).string(a.name);
    if ('float' in a) w.uint32((2 << 3) | FIXED32).float(a.float).uint32((20 << 3) | VARINT).int32(1);
    else if ('int' in a) w.uint32((3 << 3) | VARINT).int64(a.int).uint32((20 << 3) | VARINT).int32(2);
    else {
      for (const v of a.ints) w.uint32((8 << 3) | VARINT).int64(v);
      w.uint32((20 << 3) | VARINT).int32(7);
    }
  });
}

/** A NodeProto of the default domain. */
export function nodeProto(op: string, inputs: readonly string[], outputs: readonly string[], name: string, attributes: readonly Attribute[] = []): Bytes {
  return message((w) => {
    for (const i of inputs) w.uint32((1 << 3) | LEN).string(i);
    for (const o of outputs) w.uint32((2 << 3) | LEN).string(o);
    w.uint32((3 << 3) | LEN).string(name);
    w.uint32((4 << 3) | LEN).string(op);
    for (const a of attributes) w.uint32((5 << 3) | LEN).bytes(attributeProto(a));
  });
}

/** An initializer: float32 or int64 values, stored as raw little-endian bytes. */
export function tensorProto(name: string, dims: readonly number[], values: Float32Array | BigInt64Array): Bytes {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`tensor ${name}: ${values.length} values for dims [${dims.join(',')}]`);
  const raw = Buffer.alloc(values.byteLength);
  if (values instanceof Float32Array) values.forEach((v, i) => raw.writeFloatLE(v, i * 4));
  else values.forEach((v, i) => raw.writeBigInt64LE(v, i * 8));
  return message((w) => {
    for (const d of dims) w.uint32((1 << 3) | VARINT).int64(d);
    w.uint32((2 << 3) | VARINT).int32(values instanceof Float32Array ? 1 : 7);
    w.uint32((8 << 3) | LEN).string(name);
    w.uint32((9 << 3) | LEN).bytes(raw);
  });
}

/** A float32 tensor's ValueInfoProto; a string dimension is symbolic. */
export function valueInfoProto(name: string, dims: ReadonlyArray<number | string>): Bytes {
  const shape = message((w) => {
    for (const d of dims) {
      const dim = typeof d === 'number' ? message((x) => x.uint32((1 << 3) | VARINT).int64(d)) : message((x) => x.uint32((2 << 3) | LEN).string(d));
      w.uint32((1 << 3) | LEN).bytes(dim);
    }
  });
  const tensor = message((w) => w.uint32((1 << 3) | VARINT).int32(1).uint32((2 << 3) | LEN).bytes(shape));
  const type = message((w) => w.uint32((1 << 3) | LEN).bytes(tensor));
  return message((w) => w.uint32((1 << 3) | LEN).string(name).uint32((2 << 3) | LEN).bytes(type));
}

export interface GraphSpec {
  name: string;
  nodes: readonly Bytes[];
  initializers: readonly Bytes[];
  inputs: readonly Bytes[];
  outputs: readonly Bytes[];
}

export interface ModelSpec {
  graph: GraphSpec;
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
}

/** The ModelProto bytes. */
export function modelProto(m: ModelSpec): Bytes {
  const g = m.graph;
  const graph = message((w) => {
    for (const n of g.nodes) w.uint32((1 << 3) | LEN).bytes(n);
    w.uint32((2 << 3) | LEN).string(g.name);
    for (const t of g.initializers) w.uint32((5 << 3) | LEN).bytes(t);
    for (const i of g.inputs) w.uint32((11 << 3) | LEN).bytes(i);
    for (const o of g.outputs) w.uint32((12 << 3) | LEN).bytes(o);
  });
  const opset = message((w) => w.uint32((1 << 3) | LEN).string('').uint32((2 << 3) | VARINT).int64(m.opset));
  return message((w) => {
    w.uint32((1 << 3) | VARINT).int64(m.irVersion);
    w.uint32((2 << 3) | LEN).string(m.producerName);
    w.uint32((3 << 3) | LEN).string(m.producerVersion);
    if (m.docString) w.uint32((6 << 3) | LEN).string(m.docString);
    w.uint32((7 << 3) | LEN).bytes(graph);
    w.uint32((8 << 3) | LEN).bytes(opset);
  });
}
