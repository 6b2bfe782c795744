// The containers panel's words and order, kept apart from the component so they are tested
// without a browser.

import type { ContainerUsage } from '../types';

/** Problems first (unhealthy, restarting, stopped), then by name: what needs a look is on top. */
export function sortContainers(list: ContainerUsage[]): ContainerUsage[] {
  return [...list].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function rank(c: ContainerUsage): number {
  if (c.health === 'unhealthy') return 0;
  if (c.state === 'restarting') return 1;
  if (c.state === 'exited' || c.state === 'dead') return 2;
  return 3;
}

/** "running", "exited 137", "restarting". */
export function stateText(c: ContainerUsage): string {
  return c.state !== 'running' && c.exitCode != null ? `${c.state} ${c.exitCode}` : c.state;
}

/** The badge class of a state: ok, warning or critical, like alerts. */
export function stateTone(c: ContainerUsage): 'ok' | 'warning' | 'critical' | 'idle' {
  if (c.state === 'exited' || c.state === 'dead') return c.exitCode === 0 ? 'idle' : 'critical';
  if (c.state === 'restarting' || c.health === 'unhealthy') return 'warning';
  if (c.state === 'running') return 'ok';
  return 'idle';
}

/** "3 running, 1 exited": the panel's one-line count, states in a stable order. */
export function countText(list: ContainerUsage[]): string {
  const counts = new Map<string, number>();
  for (const c of list) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
  const order = ['running', 'restarting', 'paused', 'created', 'exited', 'dead', 'removing'];
  const states = [...counts.keys()].sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return states.map((s) => `${counts.get(s)} ${s}`).join(', ');
}
