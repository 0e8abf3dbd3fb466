/**
 * A training set on disk: one sub-folder per identity, images inside (JPEG, PNG, WebP). Sub-folders may be
 * symbolic links, so a view of a larger collection (e.g. the LFW identities of one pairs file) can be built
 * without copying images.
 *
 * What is wrong with the data is said plainly: a root that is missing is NOT_FOUND; fewer than two identities
 * with two or more images is INVALID_ARGUMENT (a triplet needs a positive and a negative); an identity with a
 * single image, or none, is skipped with a warning.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FaceflowError } from '@faceflow/shared';

export const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp)$/i;

export interface IdentityFolder {
  name: string;
  /** image files, absolute or relative to the working directory, sorted */
  files: string[];
}

export interface ScanResult {
  root: string;
  identities: IdentityFolder[];
  warnings: string[];
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function scanIdentityFolders(root: string): Promise<ScanResult> {
  let entries: string[];
  try {
    if (!(await stat(root)).isDirectory()) throw new Error('not a folder');
    entries = (await readdir(root)).sort();
  } catch (e) {
    throw new FaceflowError('NOT_FOUND', `training data folder not found or not a folder: ${root}`, { cause: e });
  }
  const warnings: string[] = [];
  const identities: IdentityFolder[] = [];
  let looseFiles = 0;
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    const dir = path.join(root, name);
    if (!(await isDir(dir))) {
      if (IMAGE_EXTENSIONS.test(name)) looseFiles++;
      continue;
    }
    const files = (await readdir(dir)).filter((f) => IMAGE_EXTENSIONS.test(f) && !f.startsWith('.')).sort().map((f) => path.join(dir, f));
    if (files.length < 2) {
      warnings.push(`identity "${name}" skipped: ${files.length === 0 ? 'no images' : 'only one image'} (a positive pair needs two)`);
      continue;
    }
    identities.push({ name, files });
  }
  if (looseFiles > 0) warnings.push(`${looseFiles} image(s) directly under ${root} ignored: put each identity's images in its own sub-folder`);
  if (identities.length < 2) {
    throw new FaceflowError(
      'INVALID_ARGUMENT',
      `${root} has ${identities.length} identit${identities.length === 1 ? 'y' : 'ies'} with two or more images${identities.length === 1 ? ` (${identities[0]!.name})` : ''}; training needs at least 2 (one sub-folder per person, two or more images each)`,
      { details: { identities: identities.length } },
    );
  }
  return { root, identities, warnings };
}
