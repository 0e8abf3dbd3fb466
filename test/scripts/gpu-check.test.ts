/**
 * scripts/gpu-check.sh (issue 11 item 6) on a machine without an NVIDIA GPU: it says so, exits 0 at once
 * and installs nothing, whether nvidia-smi is missing or present without a working driver.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../pipeline/fixtures.js';

const run = promisify(execFile);
const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A PATH holding only dirname (the script's first external command) and, if given, a stub nvidia-smi. */
function binWith(nvidiaSmi?: string): { bin: string; gpuDir: string } {
  const d = mkdtempSync(path.join(tmpdir(), 'faceflow-gpu-check-'));
  temps.push(d);
  const bin = path.join(d, 'bin');
  mkdirSync(bin);
  symlinkSync(existsSync('/usr/bin/dirname') ? '/usr/bin/dirname' : '/bin/dirname', path.join(bin, 'dirname'));
  if (nvidiaSmi !== undefined) {
    writeFileSync(path.join(bin, 'nvidia-smi'), nvidiaSmi);
    chmodSync(path.join(bin, 'nvidia-smi'), 0o755);
  }
  return { bin, gpuDir: path.join(d, 'gpu') };
}

async function gpuCheck(bin: string, gpuDir: string): Promise<{ code: number; stdout: string }> {
  try {
    const r = await run('/bin/bash', [path.join(ROOT, 'scripts/gpu-check.sh')], { env: { PATH: bin, HOME: path.dirname(gpuDir), FACEFLOW_GPU_DIR: gpuDir }, timeout: 10_000, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout };
  } catch (e) {
    const err = e as { code?: number; killed?: boolean; stdout?: string };
    if (err.killed) throw new Error('gpu-check.sh did not exit within 10 s without a GPU');
    return { code: err.code ?? -1, stdout: err.stdout ?? '' };
  }
}

describe('gpu-check.sh', () => {
  it('without_nvidia_smi_it_says_there_is_no_nvidia_gpu_exits_0_and_installs_nothing', async () => {
    const { bin, gpuDir } = binWith();
    const r = await gpuCheck(bin, gpuDir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no NVIDIA GPU/);
    expect(existsSync(gpuDir)).toBe(false);
  });

  it('with_nvidia_smi_but_no_working_gpu_it_says_so_exits_0_and_installs_nothing', async () => {
    const { bin, gpuDir } = binWith('#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver" >&2\nexit 9\n');
    const r = await gpuCheck(bin, gpuDir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no NVIDIA GPU/);
    expect(existsSync(gpuDir)).toBe(false);
  });
});
