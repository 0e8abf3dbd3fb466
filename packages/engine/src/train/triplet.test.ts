import { describe, expect, it } from 'vitest';
import { tf, initRuntime } from '../runtime/tf.js';
import { tripletLoss, tripletLossValues, TRIPLET_ALPHA } from './triplet.js';

describe('triplet loss (the notebook definition)', () => {
  const a = [[1, 0], [0, 1]];
  const p = [[0.6, 0.8], [0, 1]];
  const n = [[0, 1], [1, 0]];
  // by hand: triplet 0: |a-p|^2 = 0.16+0.64 = 0.8, |a-n|^2 = 2 -> max(0.8-2+0.2, 0) = 0
  //          triplet 1: |a-p|^2 = 0, |a-n|^2 = 2 -> 0; make one violate the margin:
  const p2 = [[0, 1], [0, 1]];
  // triplet 0 with p2: |a-p|^2 = 2, |a-n|^2 = 2 -> 2-2+0.2 = 0.2
  it('matches hand-computed values', () => {
    expect(TRIPLET_ALPHA).toBe(0.2);
    expect(tripletLossValues(a, p, n)).toBeCloseTo(0, 10);
    expect(tripletLossValues(a, p2, n)).toBeCloseTo(0.2, 10);
    expect(tripletLossValues([[0, 0]], [[3, 4]], [[1, 0]], 0.5)).toBeCloseTo(25 - 1 + 0.5, 10);
  });
  it('the tensor version equals the plain version and has the hand-computed gradient', async () => {
    await initRuntime({ backend: 'cpu' });
    const [A, P, N] = [a, p2, n].map((x) => tf.tensor2d(x));
    const loss = tripletLoss(A!, P!, N!);
    expect((await loss.data())[0]).toBeCloseTo(0.2, 6);
    // d/da of (|a-p|^2 - |a-n|^2) = 2(a-p) - 2(a-n) = 2(n-p) for the violating triplet, 0 for the other
    const grad = tf.grad((x: import('@tensorflow/tfjs').Tensor) => tripletLoss(x, P!, N!))(A!);
    const g = (await grad.array()) as number[][];
    expect(g[0]![0]).toBeCloseTo(2 * (0 - 0), 6);
    expect(g[0]![1]).toBeCloseTo(2 * (1 - 1), 6);
    expect(g[1]).toEqual([0, 0]);
    const grad2 = tf.grad((x: import('@tensorflow/tfjs').Tensor) => tripletLoss(x, tf.tensor2d([[0, 0]]), tf.tensor2d([[1, 0]]), 0.5))(tf.tensor2d([[0.5, 0.5]]));
    // 2(n - p) = [2, 0]
    expect(Array.from(await grad2.data())).toEqual([2, 0]);
    tf.dispose([A!, P!, N!, loss, grad, grad2]);
  });
  it('rejects mismatched shapes', async () => {
    await initRuntime({ backend: 'cpu' });
    expect(() => tripletLoss(tf.zeros([2, 3]), tf.zeros([2, 3]), tf.zeros([3, 3]))).toThrow(/shapes differ/);
  });
});
