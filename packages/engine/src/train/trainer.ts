/**
 * Training a projection head with the notebook's triplet loss on vectors of the frozen base embedder.
 *
 * Input: identities, each with samples (images), each with one or more copies of its base embedding: copy 0
 * of the clean chip, the others of augmented chips (embed-set.ts computes them once). Training never runs the
 * base network: it samples P identities x K samples per batch, takes a random copy of each, mines triplets
 * online on the head's current embeddings (mining.ts), and minimises mean tripletLoss (triplet.ts) over the
 * mined triplets with Adam.
 *
 * Validation is split by identity (a seeded shuffle of the identity names), so its people are never seen in
 * training. Each epoch (and before the first, "epoch 0") the trainer measures on the validation identities:
 *  - valLoss: the mean triplet loss over a fixed set of triplets, drawn once: each validation anchor-positive
 *    pair (different images) with one of the anchor's 10 nearest negatives under the base embedding;
 *  - valAccuracy / valThreshold / valAuc: verification on fixed validation pairs (all positive pairs of
 *    different images, capped, and as many random negative pairs), at the accuracy-optimal threshold.
 * Early stopping watches valAccuracy (default) or valLoss, with `patience` epochs; the best epoch's weights are
 * restored, and its threshold is the head's recalibrated threshold. Epoch 0 competes too: when training never
 * beats the initial head (the identity map for a linear head of the base's size), that is what is returned,
 * and `improved` says so.
 *
 * The returned head also carries an identify (1:N) threshold: its distance at a false-accept rate of 1e-3 on
 * the impostor pairs of the validation identities (far.ts: every pair of images of two different validation
 * people, all copies, sampled above 2 million pairs), never looser than the accuracy-optimal threshold. With
 * fewer than 1000 impostor pairs that is the smallest impostor distance, and `far.resolved` is false.
 *
 * Everything random is seeded: the same data, config and seed give the same head, bit for bit.
 */
import { FaceflowError } from '@faceflow/shared';
import { tf } from '../runtime/tf.js';
import { tripletLoss, TRIPLET_ALPHA } from './triplet.js';
import { bestThreshold, roc, auc, type Scored } from '../eval/lfw.js';
import { applyHead, type HeadKind } from '../models/head.js';
import { buildHeadModel, restoreWeights, snapshotWeights } from './head.js';
import { mineTriplets, squaredDistances, type MiningStrategy, MINING_STRATEGIES } from './mining.js';
import { calibrateFar, IDENTIFY_FAR, type FarCalibration } from '../eval/far.js';
import { Rng, deriveSeed } from '../eval/rng.js';
import type { LayersModel, Scalar, Tensor2D, Variable } from '@tensorflow/tfjs';

export interface TrainSample {
  /** a stable id of the image (its path relative to the data root) */
  key: string;
  /** base embeddings: copies[0] of the clean chip, then of augmented chips; all of the same dimension */
  copies: Float32Array[];
}

export interface TrainIdentity {
  name: string;
  samples: TrainSample[];
}

export interface TrainConfig {
  head: HeadKind;
  /** output dimension (default: the base dimension) */
  dim?: number;
  /** hidden units of the mlp head (default 256) */
  hidden?: number;
  epochs: number;
  /** identities per batch */
  p: number;
  /** samples per identity per batch */
  k: number;
  mining: MiningStrategy;
  alpha: number;
  /** Adam learning rate */
  lr: number;
  seed: number;
  /** fraction of identities held out for validation; 0 trains on all and calibrates on the training ones */
  valFraction: number;
  /** epochs without improvement before stopping */
  patience: number;
  monitor: 'loss' | 'accuracy';
  /** batches per epoch (default: enough for every sample once, ceil(samples / (p * k))) */
  stepsPerEpoch?: number;
  /** cap on validation pairs per class (default 5000) */
  maxValPairs?: number;
  /** cap on the validation impostor pairs of the FAR-1e-3 threshold (default 2 000 000; sampled above it) */
  maxImpostorPairs?: number;
}

export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  head: 'linear',
  epochs: 30,
  p: 16,
  k: 4,
  mining: 'semi-hard',
  alpha: TRIPLET_ALPHA,
  lr: 1e-3,
  seed: 1,
  valFraction: 0.2,
  patience: 5,
  // accuracy, not loss: on LFW (BENCHMARKS.md, issue 5) the validation triplet loss fell 5x in one epoch while
  // verification accuracy fell too; watching accuracy never returns a head worse than the initial one
  monitor: 'accuracy',
});

export interface ValMetrics {
  loss: number;
  accuracy: number;
  threshold: number;
  auc: number;
}

export interface EpochRecord {
  epoch: number;
  /** mean mined-triplet loss over the epoch's batches (null for epoch 0, before training) */
  trainLoss: number | null;
  /** fraction of mined triplets with a positive loss */
  activeFraction: number | null;
  triplets: number;
  valLoss: number;
  valAccuracy: number;
  valThreshold: number;
  valAuc: number;
  seconds: number;
}

export interface TrainResult {
  /** the head with the best epoch's weights; the caller saves and disposes it */
  model: LayersModel;
  inputDim: number;
  dim: number;
  history: EpochRecord[];
  bestEpoch: number;
  /** whether the best epoch is a trained one (> 0) */
  improved: boolean;
  stoppedEarly: boolean;
  /** the accuracy-optimal threshold (verify, 1:1) on the validation identities */
  threshold: number;
  thresholdSource: 'validation-identities' | 'training-identities';
  /**
   * the identify (1:N) threshold: min(far.distance, threshold), on the same identities as `threshold`
   */
  distanceAtFar1e3: number;
  /** how distanceAtFar1e3 was measured: impostor pairs, false accepts, resolved or not (far.ts) */
  far: FarCalibration;
  /** the same FAR calibration of the base embedding alone (no head), on the same pairs, for comparison */
  baseFar: FarCalibration;
  split: { train: string[]; validation: string[] };
  /** validation figures of the base embedding alone (no head) and of the returned head */
  base: ValMetrics;
  best: ValMetrics;
  validationPairs: { positive: number; negative: number; triplets: number };
  config: TrainConfig;
}

export interface TrainHooks {
  onEpoch?(record: EpochRecord, best: boolean): void;
  onStep?(step: number, stepsPerEpoch: number, epoch: number): void;
}

interface Item {
  id: number;
  sample: number;
  copy: number;
}

function validate(identities: TrainIdentity[], c: TrainConfig): number {
  const int = (name: string, v: number, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) throw new FaceflowError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], got ${v}`);
  };
  int('epochs', c.epochs, 1, 100000);
  int('p', c.p, 2, 10000);
  int('k', c.k, 2, 1000);
  int('patience', c.patience, 1, 100000);
  if (c.stepsPerEpoch !== undefined) int('stepsPerEpoch', c.stepsPerEpoch, 1, 10_000_000);
  if (c.maxImpostorPairs !== undefined) int('maxImpostorPairs', c.maxImpostorPairs, 1, 100_000_000);
  if (!(MINING_STRATEGIES as readonly string[]).includes(c.mining)) throw new FaceflowError('INVALID_ARGUMENT', `mining must be one of ${MINING_STRATEGIES.join(', ')}`);
  if (!(c.alpha > 0 && c.alpha <= 4)) throw new FaceflowError('INVALID_ARGUMENT', `alpha must be in (0, 4], got ${c.alpha}`);
  if (!(c.lr > 0 && c.lr < 10)) throw new FaceflowError('INVALID_ARGUMENT', `lr must be in (0, 10), got ${c.lr}`);
  if (!(c.valFraction >= 0 && c.valFraction < 1)) throw new FaceflowError('INVALID_ARGUMENT', `valFraction must be in [0, 1), got ${c.valFraction}`);
  if (c.monitor !== 'loss' && c.monitor !== 'accuracy') throw new FaceflowError('INVALID_ARGUMENT', `monitor must be loss or accuracy, got "${String(c.monitor)}"`);
  const usable = identities.filter((i) => i.samples.length >= 2);
  if (usable.length < 2) {
    throw new FaceflowError(
      'INVALID_ARGUMENT',
      `training needs at least 2 identities with 2 or more images each; found ${usable.length}${usable.length === 1 ? ` (${usable[0]!.name})` : ''}: a triplet needs a positive of the same person and a negative of another`,
    );
  }
  const dim = usable[0]!.samples[0]!.copies[0]?.length ?? 0;
  for (const id of usable) {
    for (const s of id.samples) {
      if (s.copies.length === 0 || s.copies.some((v) => v.length !== dim)) {
        throw new FaceflowError('INVALID_ARGUMENT', `sample ${s.key} of ${id.name} has no embedding or one of another size than ${dim}`);
      }
    }
  }
  return dim;
}

/** Splits identity names by a seeded shuffle: round(fraction * n) for validation (at least 2 when > 0). */
export function splitIdentities(names: string[], fraction: number, seed: number): { train: string[]; validation: string[] } {
  const sorted = [...names].sort();
  if (fraction <= 0) return { train: sorted, validation: [] };
  const shuffled = new Rng(deriveSeed(seed, 'split')).shuffle([...sorted]);
  const nVal = Math.max(2, Math.round(fraction * sorted.length));
  if (sorted.length - nVal < 2) {
    throw new FaceflowError(
      'INVALID_ARGUMENT',
      `${sorted.length} usable identities cannot be split into >= 2 for training and >= 2 for validation (valFraction ${fraction}); add identities or set the validation fraction to 0`,
    );
  }
  return { train: shuffled.slice(nVal).sort(), validation: shuffled.slice(0, nVal).sort() };
}

class Evaluator {
  private readonly positives: Array<[number, number]> = [];
  private readonly negatives: Array<[number, number]> = [];
  private readonly triplets: Array<[number, number, number]> = [];
  readonly flat: Float32Array;

  constructor(readonly items: Item[], vec: (it: Item) => Float32Array, readonly dim: number, maxPairs: number, seed: number) {
    const rng = new Rng(deriveSeed(seed, 'validation'));
    this.flat = new Float32Array(items.length * dim);
    items.forEach((it, i) => this.flat.set(vec(it), i * dim));
    const byId = new Map<number, number[]>();
    items.forEach((it, i) => byId.set(it.id, [...(byId.get(it.id) ?? []), i]));
    const pos: Array<[number, number]> = [];
    for (const idx of byId.values()) {
      for (let x = 0; x < idx.length; x++) {
        for (let y = x + 1; y < idx.length; y++) if (items[idx[x]!]!.sample !== items[idx[y]!]!.sample) pos.push([idx[x]!, idx[y]!]);
      }
    }
    rng.shuffle(pos);
    this.positives = pos.slice(0, maxPairs);
    const n = items.length;
    for (let guard = 0; this.negatives.length < this.positives.length && guard < this.positives.length * 100; guard++) {
      const a = rng.int(n);
      const b = rng.int(n);
      if (items[a]!.id !== items[b]!.id) this.negatives.push([a, b]);
    }
    // fixed validation triplets: each positive pair with one of the anchor's 10 nearest negatives (base space)
    const nearest = new Map<number, number[]>();
    for (const [a, p] of this.positives) {
      const cached = nearest.get(a);
      if (cached) {
        this.triplets.push([a, p, rng.pick(cached)]);
        continue;
      }
      const near: Array<{ j: number; d: number }> = [];
      for (let j = 0; j < n; j++) {
        if (items[j]!.id === items[a]!.id) continue;
        let d = 0;
        for (let k = 0; k < dim; k++) {
          const v = this.flat[a * dim + k]! - this.flat[j * dim + k]!;
          d += v * v;
        }
        if (near.length < 10 || d < near[near.length - 1]!.d) {
          near.push({ j, d });
          near.sort((u, v) => u.d - v.d || u.j - v.j);
          if (near.length > 10) near.pop();
        }
      }
      nearest.set(a, near.map((x) => x.j));
      this.triplets.push([a, p, rng.pick(near).j]);
    }
  }

  get counts(): { positive: number; negative: number; triplets: number } {
    return { positive: this.positives.length, negative: this.negatives.length, triplets: this.triplets.length };
  }

  /** Metrics of embeddings `emb` (flat [items, d], L2-normalised), for the triplet margin `alpha`. */
  metrics(emb: Float32Array, d: number, alpha: number): ValMetrics {
    const sq = (a: number, b: number): number => {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const v = emb[a * d + k]! - emb[b * d + k]!;
        s += v * v;
      }
      return s;
    };
    let loss = 0;
    for (const [a, p, n] of this.triplets) loss += Math.max(sq(a, p) - sq(a, n) + alpha, 0);
    const scored: Scored[] = [
      ...this.positives.map(([a, b]) => ({ distance: Math.sqrt(sq(a, b)), same: true })),
      ...this.negatives.map(([a, b]) => ({ distance: Math.sqrt(sq(a, b)), same: false })),
    ];
    const best = bestThreshold(scored);
    return { loss: this.triplets.length ? loss / this.triplets.length : 0, accuracy: best.accuracy, threshold: best.threshold, auc: auc(roc(scored)) };
  }
}

function embedFlat(model: LayersModel, flat: Float32Array, n: number, inputDim: number): Float32Array {
  const out = tf.tidy(() => applyHead(model, tf.tensor2d(flat, [n, inputDim])));
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/** One optimisation step on a batch: mines triplets, minimises their mean triplet loss. */
export function trainStep(
  model: LayersModel,
  optimizer: import('@tensorflow/tfjs').Optimizer,
  batch: Float32Array,
  labels: number[],
  options: { inputDim: number; mining: MiningStrategy; alpha: number; rng: Rng; itemKeys?: readonly (string | number)[] },
): { loss: number; triplets: number; active: number } {
  const n = labels.length;
  const x = tf.tensor2d(batch, [n, options.inputDim]);
  try {
    const emb = embedFlat(model, batch, n, options.inputDim);
    const dim = emb.length / n;
    const dist = squaredDistances(emb, n, dim);
    const mined = mineTriplets(dist, labels, { strategy: options.mining, alpha: options.alpha, rng: options.rng, ...(options.itemKeys ? { itemKeys: options.itemKeys } : {}) });
    const t = mined.anchors.length;
    if (t === 0) return { loss: 0, triplets: 0, active: 0 };
    let active = 0;
    for (let i = 0; i < t; i++) {
      const a = mined.anchors[i]!;
      if (dist[a * n + mined.positives[i]!]! - dist[a * n + mined.negatives[i]!]! + options.alpha > 0) active++;
    }
    const vars = model.trainableWeights.map((w) => w.read() as Variable);
    // rows are picked by multiplying with one-hot selection matrices: gather's gradient needs
    // UnsortedSegmentSum, which the WebAssembly backend lacks
    const select = (rows: number[]): Tensor2D => {
      const m = new Float32Array(rows.length * n);
      rows.forEach((r, i) => (m[i * n + r] = 1));
      return tf.tensor2d(m, [rows.length, n]);
    };
    const cost = optimizer.minimize(
      () =>
        tf.tidy(() => {
          const e = applyHead(model, x, true);
          const A = tf.matMul(select(mined.anchors), e);
          const P = tf.matMul(select(mined.positives), e);
          const N = tf.matMul(select(mined.negatives), e);
          return tf.div(tripletLoss(A, P, N, options.alpha), t) as Scalar;
        }),
      true,
      vars,
    );
    const loss = cost ? (cost.dataSync()[0] ?? 0) : 0;
    cost?.dispose();
    return { loss, triplets: t, active };
  } finally {
    x.dispose();
  }
}

/** Trains a head; see the module comment. The tensors it creates are freed, except the returned model's. */
export async function trainHead(identities: TrainIdentity[], config: Partial<TrainConfig> = {}, hooks: TrainHooks = {}): Promise<TrainResult> {
  const c: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...config };
  const inputDim = validate(identities, c);
  const dim = c.dim ?? inputDim;
  const usable = identities.filter((i) => i.samples.length >= 2).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const names = usable.map((i) => i.name);
  if (new Set(names).size !== names.length) throw new FaceflowError('INVALID_ARGUMENT', 'identity names must be unique');
  const split = splitIdentities(names, c.valFraction, c.seed);
  const byName = new Map(usable.map((i) => [i.name, i]));
  const trainIds = split.train.map((n) => byName.get(n)!);
  const evalIds = (split.validation.length > 0 ? split.validation : split.train).map((n) => byName.get(n)!);

  const evalItems: Item[] = [];
  evalIds.forEach((idt, id) => idt.samples.forEach((s, sample) => s.copies.forEach((_, copy) => evalItems.push({ id, sample, copy }))));
  const evaluator = new Evaluator(evalItems, (it) => evalIds[it.id]!.samples[it.sample]!.copies[it.copy]!, inputDim, c.maxValPairs ?? 5000, c.seed);
  const base = evaluator.metrics(evaluator.flat, inputDim, c.alpha);

  const model = buildHeadModel({ kind: c.head, inputDim, dim, ...(c.hidden !== undefined ? { hidden: c.hidden } : {}) }, deriveSeed(c.seed, 'init'));
  const optimizer = tf.train.adam(c.lr);
  const sampleRng = new Rng(deriveSeed(c.seed, 'batches'));
  const mineRng = new Rng(deriveSeed(c.seed, 'mining'));
  const P = Math.min(c.p, trainIds.length);
  const totalSamples = trainIds.reduce((s, i) => s + i.samples.length, 0);
  const steps = c.stepsPerEpoch ?? Math.max(1, Math.ceil(totalSamples / (P * c.k)));
  let order: number[] = [];

  const nextBatch = (): { flat: Float32Array; labels: number[]; keys: string[] } => {
    const ids: number[] = [];
    while (ids.length < P) {
      if (order.length === 0) order = sampleRng.shuffle(trainIds.map((_, i) => i));
      const next = order.pop()!;
      if (!ids.includes(next)) ids.push(next);
    }
    const flat = new Float32Array(P * c.k * inputDim);
    const labels: number[] = [];
    const keys: string[] = [];
    for (const id of ids) {
      const samples = trainIds[id]!.samples;
      const picks = sampleRng.shuffle(samples.map((_, i) => i)).slice(0, c.k);
      while (picks.length < c.k) picks.push(sampleRng.int(samples.length));
      for (const s of picks) {
        const copies = samples[s]!.copies;
        let copy = sampleRng.int(copies.length);
        // a repeated sample takes another copy when there is one
        for (let tries = 0; tries < 4 && keys.includes(`${id}/${s}/${copy}`); tries++) copy = sampleRng.int(copies.length);
        flat.set(copies[copy]!, labels.length * inputDim);
        labels.push(id);
        keys.push(`${id}/${s}/${copy}`);
      }
    }
    return { flat, labels, keys };
  };

  const evaluate = (): ValMetrics => evaluator.metrics(embedFlat(model, evaluator.flat, evalItems.length, inputDim), dim, c.alpha);
  const better = (m: ValMetrics, best: ValMetrics): boolean => (c.monitor === 'loss' ? m.loss < best.loss - 1e-6 : m.accuracy > best.accuracy);

  const history: EpochRecord[] = [];
  let started = Date.now();
  let bestMetrics = evaluate();
  let bestEpoch = 0;
  let bestWeights = snapshotWeights(model);
  const record0: EpochRecord = { epoch: 0, trainLoss: null, activeFraction: null, triplets: 0, valLoss: bestMetrics.loss, valAccuracy: bestMetrics.accuracy, valThreshold: bestMetrics.threshold, valAuc: bestMetrics.auc, seconds: (Date.now() - started) / 1000 };
  history.push(record0);
  hooks.onEpoch?.(record0, true);
  let stoppedEarly = false;
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      started = Date.now();
      let lossSum = 0, lossSteps = 0, triplets = 0, active = 0;
      for (let step = 0; step < steps; step++) {
        const b = nextBatch();
        const r = trainStep(model, optimizer, b.flat, b.labels, { inputDim, mining: c.mining, alpha: c.alpha, rng: mineRng, itemKeys: b.keys });
        if (r.triplets > 0) {
          lossSum += r.loss;
          lossSteps++;
        }
        triplets += r.triplets;
        active += r.active;
        hooks.onStep?.(step + 1, steps, epoch);
        // let a progress bar and signals through on long epochs
        if (step % 20 === 19) await new Promise((res) => setImmediate(res));
      }
      const m = evaluate();
      const isBest = better(m, bestMetrics);
      const rec: EpochRecord = {
        epoch,
        trainLoss: lossSteps ? lossSum / lossSteps : 0,
        activeFraction: triplets ? active / triplets : 0,
        triplets,
        valLoss: m.loss,
        valAccuracy: m.accuracy,
        valThreshold: m.threshold,
        valAuc: m.auc,
        seconds: (Date.now() - started) / 1000,
      };
      history.push(rec);
      if (isBest) {
        bestMetrics = m;
        bestEpoch = epoch;
        bestWeights = snapshotWeights(model);
      }
      hooks.onEpoch?.(rec, isBest);
      if (split.validation.length > 0 && epoch - bestEpoch >= c.patience) {
        stoppedEarly = epoch < c.epochs;
        break;
      }
    }
    if (split.validation.length === 0) {
      // nothing held out: keep the last epoch, calibrated on the training identities
      bestEpoch = history[history.length - 1]!.epoch;
      bestMetrics = evaluate();
    } else {
      restoreWeights(model, bestWeights);
    }
  } catch (e) {
    model.dispose();
    optimizer.dispose();
    throw e;
  }
  optimizer.dispose();
  // the identify threshold of the returned head, and of the base for comparison, on the same impostor pairs
  let far: FarCalibration;
  let baseFar: FarCalibration;
  try {
    const ids = Int32Array.from(evalItems, (it) => it.id);
    const farOptions = { far: IDENTIFY_FAR, seed: deriveSeed(c.seed, 'far'), ...(c.maxImpostorPairs !== undefined ? { maxPairs: c.maxImpostorPairs } : {}) };
    far = calibrateFar(embedFlat(model, evaluator.flat, evalItems.length, inputDim), dim, ids, farOptions);
    baseFar = calibrateFar(evaluator.flat, inputDim, ids, farOptions);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return {
    model,
    inputDim,
    dim,
    history,
    bestEpoch,
    improved: bestEpoch > 0,
    stoppedEarly,
    threshold: bestMetrics.threshold,
    thresholdSource: split.validation.length > 0 ? 'validation-identities' : 'training-identities',
    distanceAtFar1e3: Math.min(far.distance, bestMetrics.threshold),
    far,
    baseFar,
    split,
    base,
    best: bestMetrics,
    validationPairs: evaluator.counts,
    config: { ...c, dim },
  };
}
