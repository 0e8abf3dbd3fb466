/**
 * The triplet loss exactly as the notebook (and FaceNet, Schroff et al. 2015, eq. 1) defines it, for
 * L2-normalised anchor, positive and negative batches:
 *   loss = sum_i max(|a_i - p_i|^2 - |a_i - n_i|^2 + alpha, 0),  alpha = 0.2
 * A tensor version (differentiable, for training) and a plain-number version (for checks and tests).
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import type { Tensor, Scalar } from '@tensorflow/tfjs';

export const TRIPLET_ALPHA = 0.2;

export function tripletLoss(anchor: Tensor, positive: Tensor, negative: Tensor, alpha = TRIPLET_ALPHA): Scalar {
  if (anchor.shape.join() !== positive.shape.join() || anchor.shape.join() !== negative.shape.join()) {
    throw new FaceflowError('INVALID_ARGUMENT', `triplet shapes differ: ${anchor.shape} / ${positive.shape} / ${negative.shape}`);
  }
  return tf.tidy(() => {
    const pos = tf.sum(tf.square(tf.sub(anchor, positive)), -1);
    const neg = tf.sum(tf.square(tf.sub(anchor, negative)), -1);
    return tf.sum(tf.maximum(tf.add(tf.sub(pos, neg), alpha), 0)) as Scalar;
  });
}

export function tripletLossValues(anchor: number[][], positive: number[][], negative: number[][], alpha = TRIPLET_ALPHA): number {
  if (anchor.length !== positive.length || anchor.length !== negative.length) {
    throw new FaceflowError('INVALID_ARGUMENT', 'anchor, positive and negative batches must have the same length');
  }
  let loss = 0;
  anchor.forEach((a, i) => {
    const p = positive[i]!;
    const n = negative[i]!;
    let dp = 0, dn = 0;
    a.forEach((v, k) => {
      dp += (v - p[k]!) ** 2;
      dn += (v - n[k]!) ** 2;
    });
    loss += Math.max(dp - dn + alpha, 0);
  });
  return loss;
}
