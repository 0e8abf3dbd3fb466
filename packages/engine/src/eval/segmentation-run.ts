/**
 * The segmentation evaluation run (`faceflow eval seg`, issue 13 step 2: the loop out of the CLI): every image
 * of an LFW Part Labels folder is detected, the face nearest its centre segmented by each method, and scored
 * against its labels (segmentation.ts scoreSegmentation); each method is also timed per face, beside the
 * embedder on the same face. Also the image lists both this and the skin classifier's fit read (`splitNames`:
 * the fit takes one half by default, this run the other for the held-out check).
 */
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { FaceflowError } from '@faceflow/shared';
import type { DetectedFace, FaceEngine } from '../recognize/engine.js';
import type { RgbImage } from '../image/geometry.js';
import { decodeImage } from '../image/image.js';
import { roundTo } from '../image/output.js';
import { toDenseMask } from '../segment/mask.js';
import { type SegVariant, type VariantSegmenters, segmentVariant, variantBase } from '../segment/variants.js';
import { centreFace } from './lfw.js';
import { readPartLabels, scoreSegmentation, summariseSegmentation, type PartLabels, type SegScore, type SegSummary } from './segmentation.js';

/** Which images of a folder: all, or those at even / odd positions (0-based) when sorted by name. */
export type Split = 'even' | 'odd' | 'all';

/** Image names of a split: sorted by name, then every other one by index (0-based) or all. */
export function splitNames(names: string[], split: Split): string[] {
  const sorted = [...names].sort();
  return split === 'all' ? sorted : sorted.filter((_, i) => (i % 2 === 0) === (split === 'even'));
}

/** The image files (.jpg, .jpeg, .png, .webp) of a folder, sorted by name; NOT_FOUND when it cannot be read. */
export async function listImages(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** The label PNG of an image of the folder: the same name, .png. */
export function partLabelsFile(masksDir: string, imageName: string): string {
  return path.join(masksDir, imageName.replace(/\.[^.]+$/, '.png'));
}

export interface SegmentationRunOptions {
  /** photos (<name>.jpg) and label PNGs of the same names (red hair, green skin, blue background) */
  imagesDir: string;
  masksDir: string;
  methods: SegVariant[];
  /** default 'all' */
  split?: Split;
  /** only the first N images of the split (sorted by name) */
  limit?: number;
  /** enlarge every image (Lanczos) and its labels (nearest) this many times first (default 1) */
  scale?: number;
  /** untimed runs of every method on the first N images before timing (default 10) */
  warmup?: number;
  /** keep every image's scores */
  perImage?: boolean;
  progress?: (label: string, total: number) => { tick(): void; done(): void };
}

/** The models of a run (the segmenters as loadVariantSegmenters loads them, with the +grow classifier); `close` is called when the run is over. */
export interface SegmentationRunTools extends VariantSegmenters {
  engine: Pick<FaceEngine, 'run' | 'embedChips' | 'alignChip'>;
  close(): void;
}

export interface SegmentationMethodReport {
  method: SegVariant;
  summary: SegSummary;
  /** wall clock and this process's CPU time per face */
  msPerFace: number;
  cpuMsPerFace: number;
}

export interface SegmentationRunReport {
  images: number;
  split: Split;
  scale: number;
  /** images where no face was detected (the centred 45% box was scored) */
  fallbacks: number;
  methods: SegmentationMethodReport[];
  /** the embedder on the same faces, one at a time */
  embedMsPerFace: number;
  embedCpuMsPerFace: number;
  perImage?: Array<{ image: string; scores: Partial<Record<SegVariant, SegScore>> }>;
}

/** The share of the image side the centred fallback box takes when no face is detected (LFW is centred). */
const FALLBACK_CENTER_FRACTION = 0.45;

async function scaled(file: string, scale: number, kernel: 'lanczos3' | 'nearest'): Promise<string | Buffer> {
  if (scale === 1) return file;
  const meta = await sharp(file).metadata();
  return sharp(file).resize({ width: Math.round(meta.width! * scale), height: Math.round(meta.height! * scale), kernel, fit: 'fill' }).png().toBuffer();
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Runs the evaluation (see the module comment). Scores the face nearest the image centre (if none is
 * detected, the centred 45% box, counted in `fallbacks`). `openTools` is called once the folders passed their
 * checks (a missing mask fails before any model loads), and the tools are closed when the run is over.
 */
export async function runSegmentationEval(openTools: () => Promise<SegmentationRunTools>, options: SegmentationRunOptions): Promise<SegmentationRunReport> {
  const { imagesDir, masksDir, methods } = options;
  const split = options.split ?? 'all';
  const scale = options.scale ?? 1;
  const warmup = options.warmup ?? 10;
  let names = splitNames(await listImages(imagesDir), split);
  if (options.limit !== undefined) names = names.slice(0, options.limit);
  if (names.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no images in ${imagesDir}`);
  const missing: string[] = [];
  for (const n of names) {
    try {
      await access(partLabelsFile(masksDir, n));
    } catch {
      missing.push(partLabelsFile(masksDir, n));
    }
  }
  if (missing.length) throw new FaceflowError('NOT_FOUND', `${missing.length} mask(s) missing in ${masksDir}, e.g. ${missing[0]}`);
  // the folders are checked before any model loads
  const tools = await openTools();
  const loadImage = async (name: string): Promise<RgbImage> => decodeImage(await scaled(path.join(imagesDir, name), scale, 'lanczos3'));
  const loadLabels = async (name: string): Promise<PartLabels> => readPartLabels(await scaled(partLabelsFile(masksDir, name), scale, 'nearest'));

  const scores = new Map<SegVariant, SegScore[]>(methods.map((v) => [v, []]));
  const ms = new Map<SegVariant, number>(methods.map((v) => [v, 0]));
  const cpu = new Map<SegVariant, number>(methods.map((v) => [v, 0]));
  let embedMs = 0;
  let embedCpu = 0;
  let fallbacks = 0;
  const perImage: NonNullable<SegmentationRunReport['perImage']> = [];
  const bar = options.progress?.('segmenting', names.length);
  try {
    if (methods.some((v) => variantBase(v) === 'mesh') && !tools.mesh) throw new FaceflowError('INVALID_ARGUMENT', 'a mesh method needs the mesh segmenter');
    // untimed warm-up on the first `warmup` images, so that the timed faces see the steady state of a
    // long-running process (the models' first calls and V8's optimisation of the pixel loops happen here,
    // not in the first timed faces); scores come from the timed loop only
    for (const name of names.slice(0, Math.max(1, warmup))) {
      const warm = await loadImage(name);
      const [wf] = await tools.engine.run([warm], { embed: false, fallbackCenterFraction: FALLBACK_CENTER_FRACTION });
      const face = centreFace(wf!, warm.width, warm.height)!;
      for (const v of methods) await segmentVariant(tools, v, warm, [face]);
      await tools.engine.embedChips([tools.engine.alignChip(warm, face.landmarks)]);
    }
    for (const name of names) {
      const image = await loadImage(name);
      const labels = await loadLabels(name);
      if (labels.width !== image.width || labels.height !== image.height) {
        throw new FaceflowError('INVALID_ARGUMENT', `${partLabelsFile(masksDir, name)} is ${labels.width}x${labels.height}, its image is ${image.width}x${image.height}`);
      }
      const [faces] = await tools.engine.run([image], { embed: false, fallbackCenterFraction: FALLBACK_CENTER_FRACTION });
      const face = centreFace(faces!, image.width, image.height)!;
      if (face.score === 0) fallbacks++;
      const row: Partial<Record<SegVariant, SegScore>> = {};
      for (const v of methods) {
        const t0 = performance.now();
        const c0 = cpuMs();
        const [s] = await segmentVariant(tools, v, image, [face]);
        cpu.set(v, cpu.get(v)! + cpuMs() - c0);
        ms.set(v, ms.get(v)! + performance.now() - t0);
        const sc = scoreSegmentation(toDenseMask(s!.mask), labels, face.landmarks);
        scores.get(v)!.push(sc);
        row[v] = sc;
      }
      const t1 = performance.now();
      const c1 = cpuMs();
      await tools.engine.embedChips([tools.engine.alignChip(image, face.landmarks)]);
      embedCpu += cpuMs() - c1;
      embedMs += performance.now() - t1;
      if (options.perImage) perImage.push({ image: name, scores: row });
      bar?.tick();
    }
  } finally {
    bar?.done();
    tools.close();
  }
  const n = names.length;
  return {
    images: n,
    split,
    scale,
    fallbacks,
    methods: methods.map((v) => ({ method: v, summary: summariseSegmentation(scores.get(v)!), msPerFace: ms.get(v)! / n, cpuMsPerFace: cpu.get(v)! / n })),
    embedMsPerFace: embedMs / n,
    embedCpuMsPerFace: embedCpu / n,
    ...(options.perImage ? { perImage } : {}),
  };
}

/** What the report's JSON names beside the figures: the classifier asked for, the embedder and backend that ran. */
export interface SegmentationReportContext {
  classifier?: string;
  embedder: string;
  backend: string;
}

/** The report as `faceflow eval seg --json` shows it: rounded, with each method's cost against the embedder. */
export function segmentationReportJson(report: SegmentationRunReport, context: SegmentationReportContext) {
  const roundAll = (o: object): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, roundTo(x as number)]));
  const methods = report.methods.map(({ method, summary: s, msPerFace, cpuMsPerFace }) => {
    const m = {
      method,
      meanIou: roundTo(s.meanIou),
      meanPrecision: roundTo(s.meanPrecision),
      meanRecall: roundTo(s.meanRecall),
      meanIouFace: roundTo(s.meanIouFace),
      meanPrecisionFace: roundTo(s.meanPrecisionFace),
      meanRecallFace: roundTo(s.meanRecallFace),
      meanOnHair: roundTo(s.meanOnHair),
      failures: s.failures,
      msPerFace: roundTo(msPerFace, 2),
      cpuMsPerFace: roundTo(cpuMsPerFace, 2),
    };
    return { ...m, costVsEmbedder: roundTo(m.msPerFace / report.embedMsPerFace, 3), cpuCostVsEmbedder: roundTo(m.cpuMsPerFace / report.embedCpuMsPerFace, 3) };
  });
  return {
    images: report.images,
    split: report.split,
    scale: report.scale,
    fallbacks: report.fallbacks,
    classifier: context.classifier ?? 'default (mesh: learned, landmarks: contrast)',
    skinLabel: 'green (0,255,0), face and neck',
    embedder: context.embedder,
    embedMsPerFace: roundTo(report.embedMsPerFace, 2),
    embedCpuMsPerFace: roundTo(report.embedCpuMsPerFace, 2),
    backend: context.backend,
    methods,
    ...(report.perImage ? { perImage: report.perImage.map((r) => ({ image: r.image, ...Object.fromEntries(Object.entries(r.scores).map(([v, sc]) => [v, roundAll(sc)])) })) } : {}),
  };
}
