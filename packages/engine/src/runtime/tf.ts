/**
 * The model runtime adapter: the only module that imports TensorFlow.js. Everything else takes the `tf`
 * namespace from here, so that swapping or upgrading the runtime touches one file.
 *
 * Backend choice (first that initialises wins, unless FACEFLOW_BACKEND or an explicit option forces one):
 *   tensorflow  (@tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node: optional peer dependencies, native)
 *   wasm        (@tensorflow/tfjs-backend-wasm, SIMD; one runtime per worker thread to use every core)
 *   cpu         (pure JS, last resort)
 */
import { createRequire } from 'node:module';
import { FaceflowError } from '@faceflow/shared';

const require = createRequire(import.meta.url);

// tfjs prints a banner recommending tfjs-node when it loads in Node; we choose the backend ourselves.
function quietRequire<T>(id: string): T {
  const warn = console.warn;
  const log = console.log;
  console.warn = () => {};
  console.log = () => {};
  try {
    return require(id) as T;
  } finally {
    console.warn = warn;
    console.log = log;
  }
}

export type TF = typeof import('@tensorflow/tfjs');
export const tf: TF = quietRequire<TF>('@tensorflow/tfjs');

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface RuntimeInfo {
  backend: BackendName;
  /** Which package provided the native backend, when it is `tensorflow`. */
  nativePackage?: string;
  simd?: boolean;
  threads?: number;
}

let initialised: Promise<RuntimeInfo> | undefined;

function parseBackend(value: string, field: string): BackendName | 'auto' {
  if (value === 'auto' || (BACKENDS as readonly string[]).includes(value)) return value as BackendName | 'auto';
  throw new FaceflowError('INVALID_CONFIG', `${field} must be one of auto, ${BACKENDS.join(', ')}; got "${value}"`, {
    details: { field },
  });
}

async function tryBackend(name: BackendName): Promise<RuntimeInfo | undefined> {
  if (name === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        quietRequire(pkg);
      } catch {
        continue;
      }
      if (await tf.setBackend('tensorflow').catch(() => false)) return { backend: 'tensorflow', nativePackage: pkg };
    }
    return undefined;
  }
  if (name === 'wasm') {
    try {
      require('@tensorflow/tfjs-backend-wasm');
    } catch {
      return undefined;
    }
    if (!(await tf.setBackend('wasm').catch(() => false))) return undefined;
    const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
    return { backend: 'wasm', simd };
  }
  if (await tf.setBackend('cpu').catch(() => false)) return { backend: 'cpu' };
  return undefined;
}

/**
 * Initialises TensorFlow.js once per thread (tfjs keeps its engine in a global; that state is the
 * runtime's, not ours). A forced backend that cannot start is an error, not a silent fallback.
 */
export function initRuntime(options: { backend?: string } = {}): Promise<RuntimeInfo> {
  const requested = parseBackend(
    options.backend ?? process.env.FACEFLOW_BACKEND ?? 'auto',
    options.backend ? 'backend' : 'FACEFLOW_BACKEND',
  );
  if (initialised) {
    return initialised.then((info) => {
      if (requested !== 'auto' && info.backend !== requested) {
        throw new FaceflowError(
          'INVALID_CONFIG',
          `the runtime already runs on backend "${info.backend}"; "${requested}" was asked for later in the same thread`,
        );
      }
      return info;
    });
  }
  initialised = (async () => {
    const order = requested === 'auto' ? BACKENDS : [requested];
    for (const name of order) {
      const info = await tryBackend(name);
      if (info) {
        await tf.ready();
        tf.enableProdMode();
        return info;
      }
    }
    initialised = undefined;
    throw new FaceflowError(
      'BACKEND_UNAVAILABLE',
      requested === 'auto'
        ? 'no TensorFlow.js backend could start'
        : `backend "${requested}" could not start (is its package installed?)`,
      { retriable: false },
    );
  })();
  return initialised;
}

export function activeBackend(): string {
  return tf.getBackend();
}
