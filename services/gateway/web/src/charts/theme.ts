// Chart colours for the light and dark schemes, following the system.

export interface Palette {
  axis: string;
  grid: string;
  text: string;
  series: string[];
  warning: string;
  critical: string;
  band: string;
}

const light: Palette = {
  axis: '#6b7280',
  grid: 'rgba(0,0,0,0.07)',
  text: '#374151',
  series: ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4f46e5', '#65a30d'],
  warning: '#d97706',
  critical: '#dc2626',
  band: 'rgba(37,99,235,0.15)',
};

const dark: Palette = {
  axis: '#9ca3af',
  grid: 'rgba(255,255,255,0.08)',
  text: '#d1d5db',
  series: ['#60a5fa', '#4ade80', '#f87171', '#c084fc', '#fb923c', '#22d3ee', '#facc15', '#f472b6', '#818cf8', '#a3e635'],
  warning: '#fbbf24',
  critical: '#f87171',
  band: 'rgba(96,165,250,0.2)',
};

const query = window.matchMedia('(prefers-color-scheme: dark)');
const listeners = new Set<() => void>();
query.addEventListener('change', () => listeners.forEach((l) => l()));

export function palette(): Palette {
  return query.matches ? dark : light;
}

export function onThemeChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function seriesColor(i: number): string {
  const s = palette().series;
  return s[i % s.length]!;
}

/** `rgba()` of a hex colour. */
export function alpha(hex: string, a: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}
