// Alerts as lists hold them: live transitions merged into what the API returned.

import type { Alert, AlertEvent } from '../types';
import { formatPercent } from './format';

/** A metric's value or threshold with its unit: °C for temperature, percent otherwise. */
export function formatMetricValue(metric: string, value: number | null | undefined): string {
  if (metric === 'temperature') return value == null || !Number.isFinite(value) ? '–' : `${value.toFixed(1)}\u00a0°C`;
  return formatPercent(value);
}

/** The alert an event describes, keeping what the list already knew (acknowledgement, name). */
export function applyEvent(list: readonly Alert[], event: AlertEvent): Alert[] {
  const known = list.find((a) => a.id === event.alertId);
  const next: Alert = {
    ...(known ?? {}),
    id: event.alertId,
    serverId: event.serverId,
    metric: event.metric,
    severity: event.severity,
    state: event.state,
    value: event.state === 'firing' ? (event.value ?? null) : (known?.value ?? event.value ?? null),
    threshold: event.threshold ?? known?.threshold ?? null,
    startedAt: event.startedAt,
    resolvedAt: event.state === 'resolved' ? event.at : null,
    message: event.state === 'firing' ? (event.message ?? null) : (known?.message ?? event.message ?? null),
    container: event.container ?? known?.container ?? null,
  };
  const rest = list.filter((a) => a.id !== event.alertId);
  return [next, ...rest].sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
}

export const METRIC_NAMES: Record<string, string> = {
  cpu: 'CPU',
  memory: 'Memory',
  disk: 'Disk',
  temperature: 'Temperature',
  offline: 'Offline',
  container_stopped: 'Container stopped',
  container_restarting: 'Container restarting',
  container_unhealthy: 'Container unhealthy',
};
