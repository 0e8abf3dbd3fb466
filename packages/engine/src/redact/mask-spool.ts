/**
 * A temporary file of per-frame face masks, written in frame order and read back once in the same order: the
 * two-pass video redaction (video.ts redactVideo, `faceflow redact <video>`) analyses every frame first, decides
 * each track from all its frames, then redacts. Masks go to disk, one bit a pixel of their rectangle, so that
 * memory stays flat however long the video (a 720p face is ~4 KB; an hour with three faces on screen ~1 GB of
 * disk, not RAM).
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaceflowError } from '@faceflow/shared';
import type { Box } from '../image/geometry.js';
import type { FaceMask } from '../segment/mask.js';

export interface SpoolEntry {
  track: number;
  /** 'face': detected in this frame; 'held': a missed (or not yet detected) track's widened mask */
  kind: 'face' | 'held';
  /** the detector's box (faces only; zeros for held masks) */
  box: Box;
  mask: FaceMask;
}

const ENTRY_HEADER = 4 + 1 + 16 + 16;

export class MaskSpool {
  private written = 0;
  private constructor(
    private readonly dir: string,
    private readonly file: string,
    private fh: FileHandle | null,
    private readonly width: number,
    private readonly height: number,
  ) {}

  static async create(width: number, height: number): Promise<MaskSpool> {
    const dir = await mkdtemp(join(tmpdir(), 'faceflow-redact-'));
    const file = join(dir, 'masks.bin');
    return new MaskSpool(dir, file, await open(file, 'w'), width, height);
  }

  /** Appends one frame's entries (frames must be appended in order). */
  async append(entries: SpoolEntry[]): Promise<void> {
    if (!this.fh) throw new FaceflowError('INTERNAL', 'mask spool: append after the spool was closed for writing');
    const parts: Buffer[] = [];
    const n = Buffer.alloc(4);
    n.writeUInt32LE(entries.length);
    parts.push(n);
    for (const e of entries) {
      const m = e.mask;
      const h = Buffer.alloc(ENTRY_HEADER);
      h.writeInt32LE(e.track, 0);
      h.writeUInt8(e.kind === 'face' ? 0 : 1, 4);
      h.writeFloatLE(e.box.x, 5);
      h.writeFloatLE(e.box.y, 9);
      h.writeFloatLE(e.box.width, 13);
      h.writeFloatLE(e.box.height, 17);
      h.writeUInt32LE(m.x, 21);
      h.writeUInt32LE(m.y, 25);
      h.writeUInt32LE(m.w, 29);
      h.writeUInt32LE(m.h, 33);
      parts.push(h, packBits(m.data));
    }
    const buf = Buffer.concat(parts);
    await this.fh.write(buf, 0, buf.length, null);
    this.written++;
  }

  /** Reads the frames back in order; the spool is closed for writing first. */
  async *frames(): AsyncGenerator<SpoolEntry[]> {
    if (this.fh) {
      await this.fh.close();
      this.fh = null;
    }
    const reader = new ChunkReader(await open(this.file, 'r'));
    try {
      for (let f = 0; f < this.written; f++) {
        const n = (await reader.take(4)).readUInt32LE(0);
        const entries: SpoolEntry[] = [];
        for (let k = 0; k < n; k++) {
          const h = await reader.take(ENTRY_HEADER);
          const w = h.readUInt32LE(29), hh = h.readUInt32LE(33);
          const bits = await reader.take(Math.ceil((w * hh) / 8));
          entries.push({
            track: h.readInt32LE(0),
            kind: h.readUInt8(4) === 0 ? 'face' : 'held',
            box: { x: h.readFloatLE(5), y: h.readFloatLE(9), width: h.readFloatLE(13), height: h.readFloatLE(17) },
            mask: { width: this.width, height: this.height, x: h.readUInt32LE(21), y: h.readUInt32LE(25), w, h: hh, data: unpackBits(bits, w * hh) },
          });
        }
        yield entries;
      }
    } finally {
      await reader.close();
    }
  }

  /** Deletes the file (always call it: the spool lives in the system's temporary folder). */
  async dispose(): Promise<void> {
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = null;
    await rm(this.dir, { recursive: true, force: true });
  }
}

function packBits(data: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(data.length / 8));
  for (let i = 0; i < data.length; i++) if (data[i]) out[i >> 3]! |= 1 << (i & 7);
  return out;
}

function unpackBits(bits: Buffer, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bits[i >> 3]! >> (i & 7)) & 1;
  return out;
}

/** Sequential reads of exact lengths through a 1 MiB buffer. */
class ChunkReader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  constructor(private readonly fh: FileHandle) {}

  async take(n: number): Promise<Buffer> {
    while (this.buf.length - this.pos < n) {
      const chunk = Buffer.alloc(Math.max(1 << 20, n));
      const { bytesRead } = await this.fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) throw new FaceflowError('INTERNAL', 'mask spool: the file ended early (was it changed while redacting?)');
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk.subarray(0, bytesRead)]);
      this.pos = 0;
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
