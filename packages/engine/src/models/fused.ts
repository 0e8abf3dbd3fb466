/**
 * A fused face embedder (issue 11 step 4): several embedders, each on its own aligned chip of the same face,
 * their L2-normalised embeddings concatenated with part p scaled by sqrt(w_p) (weights summing to 1). Then
 * |x - y|^2 = sum_p w_p |x_p - y_p|^2: the fused squared L2 distance is the weighted sum of the parts'
 * (feature-level fusion that equals linear score-level fusion of their cosines, 2 - 2 cos = d^2), and the
 * embedding has unit norm, so the gallery, search and decision stack take it as any other embedder's.
 *
 * A chip of the fused embedder is the parts' chips back to back (part 0's bytes, then part 1's, ...), as
 * the engine's alignment makes them (recognize/align.ts alignEmbedderChip with `parts`).
 */
import { FaceflowError } from '@faceflow/shared';

/** What a part must offer: the common embedder contract (load elsewhere, batched run, dispose). */
export interface FusedPartEmbedder {
  run(chips: Uint8Array[]): Promise<Float32Array[]>;
  dispose(): void | Promise<void>;
}

export interface FusedPartConfig {
  weight: number;
  /** loads the part; returns it with the length of its embedding and the bytes of its chip */
  load: () => Promise<{ embedder: FusedPartEmbedder; dim: number; chipBytes: number }>;
}

export interface FusedConfig {
  parts: FusedPartConfig[];
}

interface Part {
  embedder: FusedPartEmbedder;
  dim: number;
  chipBytes: number;
  scale: number;
}

export class FusedEmbedder {
  private constructor(private parts: Part[] | undefined) {}

  /** Loads every part, one after another; if one fails, those loaded are disposed and the error is thrown. */
  static async load(config: FusedConfig): Promise<FusedEmbedder> {
    const sum = config.parts.reduce((s, p) => s + p.weight, 0);
    if (config.parts.length < 2 || config.parts.some((p) => !(p.weight > 0 && p.weight < 1)) || Math.abs(sum - 1) > 1e-9) {
      throw new FaceflowError('INVALID_CONFIG', `a fused embedder needs at least 2 parts with weights in (0, 1) summing to 1, got ${config.parts.map((p) => p.weight).join(' + ')}`);
    }
    const parts: Part[] = [];
    try {
      for (const p of config.parts) {
        const { embedder, dim, chipBytes } = await p.load();
        parts.push({ embedder, dim, chipBytes, scale: Math.sqrt(p.weight) });
      }
    } catch (e) {
      await Promise.allSettled(parts.map((p) => p.embedder.dispose()));
      throw e;
    }
    return new FusedEmbedder(parts);
  }

  /** Length of the fused embedding: the parts' lengths added. */
  get dim(): number {
    return (this.parts ?? []).reduce((s, p) => s + p.dim, 0);
  }

  /** Bytes of one fused chip: the parts' chips added. */
  get chipBytes(): number {
    return (this.parts ?? []).reduce((s, p) => s + p.chipBytes, 0);
  }

  /** @param chips fused chips (the parts' chips back to back) @returns unit-norm fused embeddings, one per chip */
  async run(chips: Uint8Array[]): Promise<Float32Array[]> {
    const parts = this.parts;
    if (!parts) throw new FaceflowError('INTERNAL', 'embedder used after dispose()');
    const total = this.chipBytes;
    chips.forEach((c, i) => {
      if (c.length !== total) throw new FaceflowError('INVALID_ARGUMENT', `chip ${i} has ${c.length} bytes, expected ${total} (the fused parts' chips back to back)`);
    });
    const out = chips.map(() => new Float32Array(this.dim));
    let chipOffset = 0;
    let dimOffset = 0;
    // each part runs on the whole batch of its own chips (its wrapper batches as it can)
    for (const p of parts) {
      const start = chipOffset;
      const embeddings = await p.embedder.run(chips.map((c) => c.subarray(start, start + p.chipBytes)));
      embeddings.forEach((e, i) => {
        if (e.length !== p.dim) throw new FaceflowError('MODEL_LOAD', `a fused part gave ${e.length} values, expected ${p.dim}`);
        let n = 0;
        for (const v of e) n += v * v;
        const k = p.scale / (Math.sqrt(n) || 1);
        const o = out[i]!;
        for (let j = 0; j < p.dim; j++) o[dimOffset + j] = e[j]! * k;
      });
      chipOffset += p.chipBytes;
      dimOffset += p.dim;
    }
    return out;
  }

  /** Frees every part (all of them even if one throws; the first error is rethrown); idempotent. */
  async dispose(): Promise<void> {
    const parts = this.parts;
    this.parts = undefined;
    if (!parts) return;
    const results = await Promise.allSettled(parts.map(async (p) => p.embedder.dispose()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
