/**
 * Every model of a registry with where it comes from and whether it is present (`faceflow models list`;
 * issue 13: moved from the CLI, which prints it).
 */
import { resolveModel, type ModelRegistry } from './registry.js';
import type { ModelEntry } from './types.js';

export interface ModelStatus {
  name: string;
  kind: ModelEntry['kind'];
  format: ModelEntry['format'];
  /** width x height */
  input: string;
  licence: string;
  licenceNote?: string;
  source: ModelEntry['source'];
  /** the package or URL its files come from */
  origin: string;
  fromPackage?: ModelEntry['fromPackage'];
  derived?: ModelEntry['derived'];
  /** "npm <package>@<version>", "cached" or "not present (<code>)" */
  status: string;
  measured: NonNullable<ModelEntry['measured']>;
}

export async function modelStatuses(registry: ModelRegistry, options: { cacheDir?: string } = {}): Promise<ModelStatus[]> {
  return Promise.all(
    registry.list().map(async (e: ModelEntry): Promise<ModelStatus> => {
      let status: string;
      try {
        const r = await resolveModel(e, { registry, ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}) });
        status = r.location === 'npm' ? `npm ${e.npm?.package}@${e.npm?.version}` : 'cached';
      } catch (err) {
        status = `not present (${(err as { code?: string }).code ?? 'error'})`;
      }
      const origin = e.derived ? `made from ${e.derived.from} (${e.derived.converter})` : e.fromPackage ? `${e.fromPackage.registry} ${e.fromPackage.package}==${e.fromPackage.version}` : e.npm ? `npm ${e.npm.package}@${e.npm.version}` : (e.url ?? e.source);
      return {
        name: e.name,
        kind: e.kind,
        format: e.format,
        input: `${e.input.width}x${e.input.height}`,
        licence: e.licence,
        ...(e.licenceNote ? { licenceNote: e.licenceNote } : {}),
        source: e.source,
        origin,
        ...(e.fromPackage ? { fromPackage: e.fromPackage } : {}),
        ...(e.derived ? { derived: e.derived } : {}),
        status,
        measured: e.measured ?? [],
      };
    }),
  );
}

/** The models `pull --all` fetches: every one not shipped in node_modules (npm-shipped ones resolve from there). */
export function pullableModels(registry: ModelRegistry): string[] {
  return registry.list().filter((e) => !e.npm).map((e) => e.name);
}
