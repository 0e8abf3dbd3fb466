/**
 * Enrolment from image files (`faceflow enroll`, issue 13: out of the CLI): the jobs of a folder with one
 * sub-folder per person, and the loop that enrolls each file's largest face into a gallery, a few files at
 * a time, skipping (and reporting) the files that fail when asked to.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import type { Gallery } from '../match/gallery.js';
import type { RgbImage } from '../image/geometry.js';
import { decodeImage } from '../image/image.js';
import type { DetectedFace, RunOptions } from './engine.js';
import { largestFace } from './largest-face.js';
import { assertQuality, faceQuality } from './quality.js';

export interface EnrollJob {
  name: string;
  file: string;
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

/** Every ROOT/<person>/<image> (JPEG, PNG, WebP), sorted; the folder name is the identity. */
export async function enrollmentJobs(dir: string): Promise<EnrollJob[]> {
  let people: string[];
  try {
    // a person's folder may be a symlink to one (a dataset linked in, not copied): followed (issue 12)
    const entries = await readdir(dir, { withFileTypes: true });
    const isFolder = async (d: (typeof entries)[number]): Promise<boolean> =>
      d.isDirectory() || (d.isSymbolicLink() && (await stat(path.join(dir, d.name)).then((st) => st.isDirectory(), () => false)));
    people = (await Promise.all(entries.map(async (d) => ((await isFolder(d)) ? d.name : undefined)))).filter((n): n is string => n !== undefined).sort();
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `cannot read folder ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const jobs: EnrollJob[] = [];
  for (const p of people) {
    for (const f of (await readdir(path.join(dir, p))).filter((x) => IMAGE_EXT.test(x)).sort()) jobs.push({ name: p, file: path.join(dir, p, f) });
  }
  if (jobs.length === 0) throw new FaceflowError('INVALID_ARGUMENT', `no images found under ${dir}/<person>/`);
  return jobs;
}

export interface EnrollFilesOptions {
  /** passed to every run (e.g. wholeImageIsFace) */
  runOptions?: RunOptions;
  /** refuse a face under this quality score (LOW_QUALITY) */
  minQuality?: number;
  /** the error for a file with no face (default NO_FACE naming the file) */
  noFace?: (file: string) => Error;
  /** a failing file is skipped (and reported) instead of failing the whole enrolment */
  skipFailures?: boolean;
  onSkip?: (file: string, reason: string) => void;
  /** files in flight at once (default 8) */
  concurrency?: number;
  progress?: { tick(): void };
}

export interface EnrollFilesResult {
  /** per identity, the faces added */
  added: Record<string, number>;
  skipped: Array<{ file: string; reason: string }>;
}

/** Enrolls the largest face of each job's file under its name into `gallery` (not saved). */
export async function enrollFiles(
  engine: { run(images: RgbImage[], options?: RunOptions): Promise<DetectedFace[][]> },
  gallery: Pick<Gallery, 'add'>,
  jobs: readonly EnrollJob[],
  options: EnrollFilesOptions = {},
): Promise<EnrollFilesResult> {
  const added: Record<string, number> = {};
  const skipped: EnrollFilesResult['skipped'] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      try {
        const image = await decodeImage(job.file);
        const [faces] = await engine.run([image], options.runOptions ?? {});
        const face = largestFace(faces!);
        if (!face) throw options.noFace?.(job.file) ?? new FaceflowError('NO_FACE', `no face found in ${job.file}`);
        if (options.minQuality !== undefined) assertQuality(faceQuality(image, face), options.minQuality, `the face in ${job.file}`);
        gallery.add(job.name, [face.embedding!]);
        added[job.name] = (added[job.name] ?? 0) + 1;
      } catch (e) {
        if (!options.skipFailures) throw e;
        skipped.push({ file: job.file, reason: (e as Error).message });
        options.onSkip?.(job.file, (e as Error).message);
      } finally {
        options.progress?.tick();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 8, jobs.length)) }, worker));
  return { added, skipped };
}
