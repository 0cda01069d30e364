// A small SVG bar chart: groups along x, one bar per series, value labels on top.
// Enough to see benchmark results at a glance without a plotting dependency.

export interface BarChart {
  title: string;
  yLabel: string;
  groups: string[];
  series: Array<{ name: string; values: Array<number | null> }>;
  /** Plot the y axis on a log10 scale (for values spanning orders of magnitude). */
  log?: boolean;
}

const COLORS = ['#3b6fb6', '#e07b39', '#4c9f70', '#b84a62', '#7d5ba6', '#8c8c8c'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (v >= 100) return Math.round(v).toString();
  return v.toPrecision(2);
}

export function barChartSvg(c: BarChart, width = 720, height = 360): string {
  const m = { top: 40, right: 20, bottom: 70, left: 70 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const all = c.series.flatMap((s) => s.values).filter((v): v is number => v !== null && v > 0);
  const max = Math.max(...all, 1);
  const min = c.log ? Math.min(...all, max) : 0;
  const lo = c.log ? Math.floor(Math.log10(min)) : 0;
  const hi = c.log ? Math.ceil(Math.log10(max)) : max * 1.15;
  const y = (v: number): number => (c.log ? h - ((Math.log10(v) - lo) / Math.max(hi - lo, 1)) * h : h - (v / hi) * h);
  const groupW = w / c.groups.length;
  const barW = (groupW * 0.8) / c.series.length;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`);
  out.push(`<g transform="translate(${m.left},${m.top})">`);
  const ticks = c.log ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)) : Array.from({ length: 5 }, (_, i) => (hi / 4) * i);
  for (const t of ticks) {
    out.push(`<line x1="0" x2="${w}" y1="${y(Math.max(t, c.log ? 10 ** lo : 0))}" y2="${y(Math.max(t, c.log ? 10 ** lo : 0))}" stroke="#ddd"/>`);
    out.push(`<text x="-6" y="${y(Math.max(t, c.log ? 10 ** lo : 0)) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  c.groups.forEach((g, gi) => {
    c.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined || v <= 0) return;
      const x = gi * groupW + groupW * 0.1 + si * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(h - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"/>`,
      );
      out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${fmt(v)}</text>`);
    });
    out.push(`<text x="${(gi * groupW + groupW / 2).toFixed(1)}" y="${h + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  out.push(`<line x1="0" x2="0" y1="0" y2="${h}" stroke="black"/><line x1="0" x2="${w}" y1="${h}" y2="${h}" stroke="black"/>`);
  out.push(`<text transform="translate(-55,${h / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}${c.log ? ' (log scale)' : ''}</text>`);
  c.series.forEach((s, si) => {
    const x = si * 150;
    out.push(`<rect x="${x}" y="${h + 34}" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${x + 16}" y="${h + 44}">${esc(s.name)}</text>`);
  });
  out.push('</g></svg>');
  return out.join('\n');
}
