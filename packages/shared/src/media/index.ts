/**
 * `@faceflow/shared/media`: the media adapter (ffmpeg: probe, decode, encode), kept out of the package root so
 * that code which only needs the contracts never loads child_process. Node builtins only.
 */
export * from './ffmpeg.js';
