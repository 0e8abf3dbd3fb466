/**
 * Face segmentation: a mask per face at the frame's resolution, as a polygon and a binary mask.
 *
 * Methods (measured on LFW Part Labels in BENCHMARKS.md, "Segmentation (issue 4)"):
 *   - `mesh`: the outline of the MediaPipe face mesh (468 points, on a crop upright along the eye line): the
 *     convex hull of its points, which on a frontal face is the silhouette FACEMESH_FACE_OVAL traces (forehead
 *     top to chin) and on a profile also takes in the nose and lips; rasterised by scanline fill. Face only:
 *     no ears, no neck.
 *   - `landmarks`: no extra model: the 68-point jaw line (ear to ear through the chin) closed by the eyebrows
 *     raised towards the hairline. Cheaper, coarser at the forehead.
 * Either can grow (`grow: true`) into the skin around the outline: the forehead up to the hairline, the ears
 * and the neck. A colour model of this face's own skin (YCbCr, sampled inside its cheeks and nose, where the
 * landmarks say skin is), set against a model of the colours around the head (hair, background: k-means of
 * a ring outside it), decides which pixels look like skin; the mask grows from the outline through connected
 * skin-like pixels, only inside a region around the face (see `growRegion`), and the outline's outer edge is
 * first peeled of what looks like the surroundings (hair over the forehead). Clothing, hair and background
 * that do not look like the face's skin stay out; skin-coloured hair or walls next to the face, necks in
 * shadow and beards are where it errs (BENCHMARKS.md).
 *
 * Everything in this folder is a pure function of (RgbImage, face geometry) except the model call in FaceSegmenter,
 * so a pipeline stage can call it per frame.
 *
 * The parts, each in its own file: the outline geometry (outline.ts), the colour models (colour.ts), the
 * growth space and region (growth.ts), the growers (grower.ts: contrast-grower.ts, learned-grower.ts), the
 * learned classifier's file (skin-classifier.ts) and, here, the segmenter.
 */
import { FaceflowError } from '@faceflow/shared';
import type { Point, RgbImage } from '../image/geometry.js';
import { type FaceMask, rasterizePolygon } from './mask.js';
import { FaceMesh, type MeshResult, meshRoiFromLandmarks, meshRoiFromMesh, type Point3 } from '../models/facemesh.js';
import { type SkinClassifier, loadSkinClassifier } from './skin-classifier.js';
import { landmarkPolygon, meshOutline } from './outline.js';
import { type GrowOptions, grownMask } from './growth.js';
import { type Grower, growerFor } from './grower.js';

export type SegmentMethod = 'mesh' | 'landmarks';

export interface FaceGeometry {
  /** 68 iBUG landmarks, image pixels (the engine's Face.landmarks) */
  landmarks: Point[];
}

export interface FaceSegment {
  /** the method that made the outline ('landmarks' also when the mesh found no face in its crop) */
  method: SegmentMethod;
  /** the face outline (closed polygon, image pixels); the neck, when asked for, is in `mask` only */
  polygon: Point[];
  /** the face (and neck, when asked for) at the frame's resolution */
  mask: FaceMask;
  /** the 468-point mesh, for the mesh method */
  mesh?: Point3[];
  /** the mesh model's face-presence probability */
  meshScore?: number;
}

export interface SegmentOptions {
  /** grow the outline into the skin around it: forehead, ears, neck (default false) */
  grow?: boolean | GrowOptions;
  /** landmarks method: see LandmarkPolygonOptions */
  foreheadRaise?: number;
}

/**
 * The landmarks method as a pure function (no model): polygon, mask and, when asked, the neck.
 */
export function segmentFromLandmarks(image: RgbImage, face: FaceGeometry, options: SegmentOptions = {}): FaceSegment {
  return landmarkSegment(image, face, options.foreheadRaise, growerFor(options.grow));
}

/** The mesh method from an already computed mesh, as a pure function. */
export function segmentFromMesh(image: RgbImage, face: FaceGeometry, mesh: MeshResult, options: SegmentOptions = {}): FaceSegment {
  return meshSegment(image, face, mesh, growerFor(options.grow));
}

function landmarkSegment(image: RgbImage, face: FaceGeometry, foreheadRaise: number | undefined, grower: Grower | undefined): FaceSegment {
  const polygon = landmarkPolygon(face.landmarks, foreheadRaise === undefined ? {} : { foreheadRaise });
  const mask = grower ? grownMask(image, polygon, face.landmarks, grower) : rasterizePolygon(polygon, image.width, image.height);
  return { method: 'landmarks', polygon, mask };
}

function meshSegment(image: RgbImage, face: FaceGeometry, mesh: MeshResult, grower: Grower | undefined): FaceSegment {
  const polygon = meshOutline(mesh.points);
  const mask = grower ? grownMask(image, polygon, face.landmarks, grower) : rasterizePolygon(polygon, image.width, image.height);
  return { method: 'mesh', polygon, mask, mesh: mesh.points, meshScore: mesh.faceScore };
}

export interface FaceSegmenterConfig {
  /** default 'mesh' */
  method?: SegmentMethod;
  /** facemesh.json, required for the mesh method (registry entry `facemesh`) */
  meshModelPath?: string;
  /**
   * a second mesh pass on MediaPipe's tracking ROI from the first mesh (default false: on LFW Part Labels it
   * moved mean IoU by +0.003 for twice the mesh's cost)
   */
  refine?: boolean;
  /** crops per mesh call */
  batchSize?: number;
  /** defaults for run() */
  options?: SegmentOptions;
  /** under this mesh face-presence score the landmarks method is used instead (default 0.5) */
  minMeshScore?: number;
  /**
   * the trees for grow classifier 'learned': a loaded classifier, or a file (default: the bundled
   * packages/engine/models/skin-classifier.json)
   */
  skinClassifier?: SkinClassifier | string;
}


/** Segments faces the engine found. The only TF.js model it may hold is the face mesh (the skin trees are plain JS). */
export class FaceSegmenter {
  private disposed = false;
  private constructor(
    private readonly mesh: FaceMesh | undefined,
    readonly method: SegmentMethod,
    private readonly refine: boolean,
    private readonly defaults: SegmentOptions,
    private readonly minMeshScore: number,
    /** the learned grow classifier's trees, given to growing whenever the options ask for 'learned' without their own */
    readonly skinClassifier: SkinClassifier,
    /** the grower of the default options, chosen at load */
    private readonly grower: Grower | undefined,
  ) {}

  static async load(config: FaceSegmenterConfig = {}): Promise<FaceSegmenter> {
    const method = config.method ?? 'mesh';
    if (method !== 'mesh' && method !== 'landmarks') throw new FaceflowError('INVALID_CONFIG', `segmentation method must be mesh or landmarks, got "${String(method)}"`);
    // read before the mesh loads, so a bad file fails fast and leaves nothing to dispose
    const skin = typeof config.skinClassifier === 'object' ? config.skinClassifier : await loadSkinClassifier(config.skinClassifier);
    const defaults = config.options ?? {};
    // chosen once, and before the mesh loads, so bad grow options fail fast too
    const grower = growerFor(defaults.grow, FaceSegmenter.defaultClassifier(method), skin);
    let mesh: FaceMesh | undefined;
    if (method === 'mesh') {
      if (!config.meshModelPath) throw new FaceflowError('INVALID_CONFIG', 'the mesh segmentation method needs meshModelPath (registry entry "facemesh")');
      mesh = await FaceMesh.load({ modelPath: config.meshModelPath, ...(config.batchSize ? { batchSize: config.batchSize } : {}) });
    }
    return new FaceSegmenter(mesh, method, config.refine ?? false, defaults, config.minMeshScore ?? 0.5, skin, grower);
  }

  /**
   * The grow classifier, unless the options name one: 'learned' on mesh outlines (it was fitted and measured
   * there, BENCHMARKS.md "Segmentation"), 'contrast' on the 68-landmark outline (the trees were never measured on it).
   */
  private static defaultClassifier(method: SegmentMethod): 'learned' | 'contrast' {
    return method === 'mesh' ? 'learned' : 'contrast';
  }

  /** One segment per face, per image; faces[i] are the faces of images[i]. */
  async run(images: RgbImage[], faces: FaceGeometry[][], options: SegmentOptions = {}): Promise<FaceSegment[][]> {
    if (this.disposed) throw new FaceflowError('INTERNAL', 'segmenter used after dispose()');
    if (images.length !== faces.length) throw new FaceflowError('INVALID_ARGUMENT', `segmenter got ${images.length} images and ${faces.length} face lists`);
    const given = { ...this.defaults, ...options };
    const foreheadRaise = given.foreheadRaise;
    // options that name their own growing get their own grower; otherwise the one chosen at load
    const grower = Object.hasOwn(options, 'grow') ? growerFor(given.grow, FaceSegmenter.defaultClassifier(this.method), this.skinClassifier) : this.grower;
    if (this.method === 'landmarks' || !this.mesh) {
      return images.map((img, i) => faces[i]!.map((f) => landmarkSegment(img, f, foreheadRaise, grower)));
    }
    const flat: Array<{ image: RgbImage; face: FaceGeometry; i: number }> = [];
    faces.forEach((fs, i) => fs.forEach((face) => flat.push({ image: images[i]!, face, i })));
    let meshes = await this.mesh.run(flat.map((f) => ({ image: f.image, roi: meshRoiFromLandmarks(f.face.landmarks) })));
    if (this.refine) meshes = await this.mesh.run(meshes.map((m, k) => ({ image: flat[k]!.image, roi: meshRoiFromMesh(m.points) })));
    const out: FaceSegment[][] = images.map(() => []);
    flat.forEach((f, k) => {
      const m = meshes[k]!;
      if (m.faceScore >= this.minMeshScore) out[f.i]!.push(meshSegment(f.image, f.face, m, grower));
      // the mesh says this crop holds no face (a false detection, or a face the mesh cannot read): its points
      // mean nothing, so the outline comes from the 68 landmarks; meshScore tells the caller
      else out[f.i]!.push({ ...landmarkSegment(f.image, f.face, foreheadRaise, grower), mesh: m.points, meshScore: m.faceScore });
    });
    return out;
  }

  dispose(): void {
    this.mesh?.dispose();
    this.disposed = true;
  }
}
