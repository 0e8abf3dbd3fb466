export * from './tf.js';
export * from './io.js';
export * from './onnx.js';
