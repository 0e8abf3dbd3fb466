/** The loss curve of a training run as an SVG document (the CLI renders it to PNG through sharp). */
import type { EpochRecord } from './trainer.js';

export function lossCurveSvg(history: EpochRecord[], bestEpoch: number, title: string): string {
  const W = 900, H = 380, T = 40, B = 50, L = 60, gap = 70;
  const pw = (W - L - gap - 20) / 2, ph = H - T - B;
  const maxEpoch = Math.max(1, ...history.map((h) => h.epoch));
  const esc = (s: string): string => s.replace(/[<>&"]/g, '');
  const panel = (x0: number, label: string, series: Array<{ name: string; colour: string; points: Array<[number, number]> }>): string => {
    const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const fx = (e: number): number => x0 + (e / maxEpoch) * pw;
    const fy = (v: number): number => T + (1 - (v - lo) / (hi - lo)) * ph;
    const xt = Array.from({ length: 6 }, (_, i) => Math.round((i * maxEpoch) / 5)).filter((v, i, a) => a.indexOf(v) === i)
      .map((e) => `<line x1="${fx(e)}" y1="${T}" x2="${fx(e)}" y2="${T + ph}" stroke="#eee"/><text x="${fx(e)}" y="${T + ph + 16}" font-size="11" text-anchor="middle">${e}</text>`).join('');
    const yt = Array.from({ length: 5 }, (_, i) => lo + ((hi - lo) * i) / 4)
      .map((v) => `<line x1="${x0}" y1="${fy(v)}" x2="${x0 + pw}" y2="${fy(v)}" stroke="#eee"/><text x="${x0 - 6}" y="${fy(v) + 4}" font-size="11" text-anchor="end">${v.toPrecision(3)}</text>`).join('');
    const lines = series.map((s, i) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1]));
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${fx(p[0]).toFixed(1)},${fy(p[1]).toFixed(1)}`).join(' ');
      const dots = pts.map((p) => `<circle cx="${fx(p[0]).toFixed(1)}" cy="${fy(p[1]).toFixed(1)}" r="2" fill="${s.colour}"/>`).join('');
      return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"/>${dots}<rect x="${x0 + 10}" y="${T + 8 + i * 16}" width="12" height="3" fill="${s.colour}"/><text x="${x0 + 27}" y="${T + 13 + i * 16}" font-size="11">${esc(s.name)}</text>`;
    }).join('');
    const best = `<line x1="${fx(bestEpoch)}" y1="${T}" x2="${fx(bestEpoch)}" y2="${T + ph}" stroke="#888" stroke-dasharray="4 3"/><text x="${fx(bestEpoch) + 3}" y="${T + ph - 4}" font-size="10" fill="#555">best</text>`;
    return `${xt}${yt}<rect x="${x0}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="black"/>${best}${lines}<text x="${x0 + pw / 2}" y="${H - 12}" font-size="12" text-anchor="middle">epoch</text><text x="${x0 + pw / 2}" y="${T - 8}" font-size="12" text-anchor="middle">${esc(label)}</text>`;
  };
  const trained = history.filter((h) => h.trainLoss !== null);
  const left = panel(L, 'triplet loss (mean per triplet)', [
    { name: 'train (mined triplets)', colour: '#2c7fb8', points: trained.map((h) => [h.epoch, h.trainLoss!]) },
    { name: 'validation (fixed triplets)', colour: '#c0392b', points: history.map((h) => [h.epoch, h.valLoss]) },
  ]);
  const right = panel(L + pw + gap, 'validation verification accuracy', [
    { name: 'accuracy at best threshold', colour: '#27ae60', points: history.map((h) => [h.epoch, h.valAccuracy]) },
  ]);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/><text x="${W / 2}" y="18" font-size="14" text-anchor="middle">${esc(title)}</text>${left}${right}</svg>`;
}
