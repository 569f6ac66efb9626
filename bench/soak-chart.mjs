// The soak's chart: bench/soak-hour.mjs's samples.csv as one standalone SVG of three panels over
// time (the gateway's resident memory, its open files beside the connections it serves, its CPU),
// with the reconnect storms (storms.json, next to the CSV) marked.
//
//   node soak-chart.mjs /tmp/soak/samples.csv ../docs/bench/soak.svg ["title"]

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [csvPath, svgPath, title = 'One-hour soak: the gateway over time'] = process.argv.slice(2);
if (!csvPath || !svgPath) throw new Error('usage: node soak-chart.mjs samples.csv out.svg [title]');

const [head, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n');
const columns = head.split(',');
const rows = lines.map((line) => Object.fromEntries(line.split(',').map((v, i) => [columns[i], columns[i] === 'phase' ? v : Number(v)])));
const stormsPath = path.join(path.dirname(csvPath), 'storms.json');
const storms = existsSync(stormsPath) ? JSON.parse(readFileSync(stormsPath, 'utf8')) : [];

const W = 760;
const PANEL_H = 170;
const M = { left: 70, right: 24, top: 46, gap: 34, bottom: 48 };
const H = M.top + 3 * PANEL_H + 2 * M.gap + M.bottom;
const COLORS = ['#1c7ed6', '#d9480f', '#2b8a3e'];
const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Round steps covering [0, max]. */
function ticks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(+v.toFixed(6));
  if (out.at(-1) < max) out.push(+(out.at(-1) + step).toFixed(6));
  return out;
}
const label = (v) => (v >= 10_000 ? `${v / 1000}k` : `${v}`);

// A last sample a few seconds past a round duration does not earn the axis another step.
const xMaxMin = ticks((Math.max(...rows.map((r) => r.t_s)) / 60) * 0.99);
const xMax = xMaxMin.at(-1);
const px = (tS) => M.left + (tS / 60 / xMax) * (W - M.left - M.right);

const out = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  `<rect width="${W}" height="${H}" fill="white"/>`,
  `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`,
];

function panel(index, name, series) {
  const top = M.top + index * (PANEL_H + M.gap);
  const bottom = top + PANEL_H;
  const yTicks = ticks(Math.max(...series.flatMap((s) => rows.map((r) => r[s.key]).filter(Number.isFinite))));
  const yMax = yTicks.at(-1);
  const py = (v) => bottom - (v / yMax) * PANEL_H;
  for (const y of yTicks) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(y)}" y2="${py(y)}" stroke="#e9ecef"/>`);
    out.push(`<text x="${M.left - 6}" y="${py(y) + 4}" text-anchor="end">${label(y)}</text>`);
  }
  for (const x of xMaxMin) out.push(`<line x1="${px(x * 60)}" x2="${px(x * 60)}" y1="${top}" y2="${bottom}" stroke="#f1f3f5"/>`);
  storms.forEach((storm, i) => {
    out.push(`<line x1="${px(storm.t).toFixed(1)}" x2="${px(storm.t).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="#868e96" stroke-dasharray="4 3"/>`);
    if (index === 0) out.push(`<text x="${(px(storm.t) + 4).toFixed(1)}" y="${top + 12}" fill="#495057">storm ${i + 1}</text>`);
  });
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${bottom}" y2="${bottom}" stroke="#495057"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${top}" y2="${bottom}" stroke="#495057"/>`);
  out.push(`<text transform="translate(16 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(name)}</text>`);
  series.forEach((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length];
    const points = rows.filter((r) => Number.isFinite(r[s.key])).map((r) => `${px(r.t_s).toFixed(1)},${py(r[s.key]).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${points.join(' ')}"/>`);
    out.push(`<rect x="${M.left + 10 + i * 190}" y="${top - 12}" width="12" height="3" fill="${color}"/>`);
    out.push(`<text x="${M.left + 28 + i * 190}" y="${top - 7}">${escape(s.name)}</text>`);
  });
  if (index === 2) {
    for (const x of xMaxMin) out.push(`<text x="${px(x * 60)}" y="${bottom + 16}" text-anchor="middle">${label(x)}</text>`);
    out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">minutes since the gateway started${storms.length ? ' (dashed: reconnect storms)' : ''}</text>`);
  }
}

panel(0, 'RSS, MB', [{ name: 'gateway resident memory', key: 'rss_mb' }]);
panel(1, 'count', [{ name: 'open files', key: 'open_files' }, { name: 'connections served', key: 'connections' }]);
panel(2, 'CPU, % of a core', [{ name: 'gateway CPU (5 s average)', key: 'cpu_pct', color: '#2b8a3e' }]);
out.push('</svg>');
writeFileSync(svgPath, `${out.join('\n')}\n`);
console.error(`wrote ${svgPath} (${rows.length} samples, ${storms.length} storms)`);
