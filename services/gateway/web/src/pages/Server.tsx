// One server: what it is and how it is now, its charts (live, or history for a range), its
// alerts on the same time axis, its thresholds and its logs. A server the user may not see is
// "not found", exactly like one that does not exist.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import type { AlertSpan, Threshold } from '../charts/Chart';
import { AlertTable } from '../components/AlertTable';
import { ContainersPanel } from '../components/Containers';
import { ProcessesPanel } from '../components/Processes';
import { ServerSilences } from '../components/ServerSilences';
import { Empty, ErrorText, Loading, NotFound, StatusBadge } from '../components/common';
import { LogList } from '../components/LogList';
import { ApiError } from '../http';
import { applyEvent } from '../lib/alerts';
import { RANGES, rangeByKey } from '../lib/buckets';
import { formatAgo, formatBytes, formatCount, formatLoad, formatPercent, formatRate, formatUptime } from '../lib/format';
import { setPerfLabel } from '../lib/frame';
import { OFFLINE_AFTER_SECS } from '../lib/fleet';
import { isAfter, toSecs } from '../lib/samples';
import { live } from '../live';
import { withRecent } from '../stores/recentAlerts';
import { setQuery, useRoute } from '../router';
import type { Alert, MetricSample, ServerDetail, Thresholds } from '../types';
import { HistoryCharts } from './server/HistoryCharts';
import { LIVE_WINDOWS, LiveCharts } from './server/LiveCharts';
import { ThresholdsPanel } from './server/Thresholds';

function Summary({ server }: { server: ServerDetail }) {
  const [sample, setSample] = useState<MetricSample | null>(null);
  const [, tick] = useState(0);
  useEffect(() => {
    let shown = server.latest?.timestamp;
    // The live charts' replay of the last minutes passes through here too: only newer samples.
    return live.onSample((s) => {
      if (s.serverId !== server.id || !isAfter(s.timestamp, shown)) return;
      shown = s.timestamp;
      setSample(s);
    });
  }, [server.id]);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  const l = server.latest;
  const t = sample ? toSecs(sample.timestamp) : l ? toSecs(l.timestamp) : null;
  const online = t !== null && Date.now() / 1000 - t <= OFFLINE_AFTER_SECS;
  const status = t === null ? server.status : online ? 'online' : 'offline';
  const cpu = sample?.cpuUsage ?? l?.cpuUsage;
  const mem = sample?.memoryUsage ?? l?.memoryUsage;
  const disk = sample?.diskUsage ?? l?.diskUsage;
  const net = sample?.networkUsage ?? l?.networkUsage;
  const cores = sample?.cpuCores?.length ?? l?.cpuCores?.length;
  const memTotal = sample?.memory?.totalBytes ?? l?.memoryTotal;
  const uptime = sample?.uptimeSecs ?? l?.uptimeSecs;
  const procs = sample?.processCount ?? l?.processes;
  const load = sample?.loadAverage?.one ?? l?.load1;
  const items: [string, string][] = [
    ['CPU', formatPercent(cpu)],
    ['Memory', formatPercent(mem)],
    ['Disk', formatPercent(disk)],
    ['Network', formatRate(net)],
    ['Load', formatLoad(load)],
    ['Uptime', formatUptime(uptime)],
    ['Cores', formatCount(cores)],
    ['RAM', formatBytes(memTotal)],
    ['Processes', formatCount(procs)],
  ];
  return (
    <div class="summary">
      <div class="summary-status">
        <StatusBadge status={status} />
        <span class="muted">{t !== null ? `last sample ${formatAgo(t * 1000)}` : 'no sample yet'}</span>
      </div>
      <dl class="figures">
        {items.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

function thresholdLines(t: Thresholds | null): Partial<Record<'cpu' | 'memory' | 'disk', Threshold[]>> {
  const out: Partial<Record<'cpu' | 'memory' | 'disk', Threshold[]>> = {};
  if (!t) return out;
  for (const m of ['cpu', 'memory', 'disk'] as const) {
    const r = t.rules[m];
    if (!r || !r.enabled) continue;
    const lines: Threshold[] = [];
    if (r.warning != null) lines.push({ value: r.warning, severity: 'warning' });
    if (r.critical != null) lines.push({ value: r.critical, severity: 'critical' });
    out[m] = lines;
  }
  return out;
}

export function ServerPage({ id }: { id: string }) {
  const route = useRoute();
  const range = rangeByKey(route.query.get('range'));
  const windowSecs = Number(route.query.get('window')) || 900;
  const [server, setServer] = useState<ServerDetail | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [alerts, setAlerts] = useState<Alert[] | null>(null);
  const [alertsError, setAlertsError] = useState<string | null>(null);
  const [thresholds, setThresholds] = useState<Thresholds | null>(null);
  const [thresholdsError, setThresholdsError] = useState<string | null>(null);

  useEffect(() => setPerfLabel('server'), []);

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    api
      .server(id, controller.signal)
      .then((s) => {
        setServer(s);
        setMissing(false);
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        if (err instanceof ApiError && err.status === 404) setMissing(true);
        else setError(errorText(err));
      });
    return () => controller.abort();
  }, [id, reload]);

  // Alerts and thresholds once the server is known to be visible.
  useEffect(() => {
    if (!server) return;
    const loadAlerts = () =>
      api
        .alerts({ serverId: id, limit: 200 })
        .then((p) => {
          setAlerts(withRecent(p.items, (a) => a.serverId === id));
          setAlertsError(null);
        })
        .catch((err) => setAlertsError(errorText(err)));
    void loadAlerts();
    api
      .thresholds(id)
      .then(setThresholds)
      .catch((err) => setThresholdsError(errorText(err)));
    const stopAlerts = live.onAlert((e) => {
      if (e.serverId === id) setAlerts((list) => applyEvent(list ?? [], e));
    });
    const stopReconnect = live.onReconnect(() => void loadAlerts());
    const stopGone = live.onGone((gone) => {
      if (gone === id) setMissing(true);
    });
    return () => {
      stopAlerts();
      stopReconnect();
      stopGone();
    };
  }, [server?.id]);

  const spans = useMemo<AlertSpan[]>(
    () =>
      (alerts ?? []).map((a) => ({
        start: toSecs(a.startedAt),
        end: a.resolvedAt ? toSecs(a.resolvedAt) : null,
        severity: a.severity,
      })),
    [alerts],
  );
  const lines = useMemo(() => thresholdLines(thresholds), [thresholds]);

  if (missing) return <NotFound what="Server" />;
  if (error)
    return (
      <section class="page">
        <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      </section>
    );
  if (!server) return <Loading what="Loading the server" />;

  const firing = (alerts ?? []).filter((a) => a.state === 'firing');
  return (
    <section class="page server" aria-labelledby="server-title" data-server={server.id}>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href="/">Fleet</a> /
          </p>
          <h1 id="server-title">{server.name}</h1>
          <p class="muted">
            {server.hostname && server.hostname !== server.name ? `${server.hostname} · ` : ''}
            <code>{server.id}</code>
            {server.tags.length > 0 ? ` · ${server.tags.map((t) => `#${t}`).join(' ')}` : ''}
            {!server.ownerId ? ' · discovered (no owner yet)' : ''}
          </p>
        </div>
        <ServerSilences server={server} />
      </div>
      <Summary server={server} />

      <div class="range-bar">
        <div class="segmented" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button
              type="button"
              aria-pressed={r.key === range.key}
              class={r.key === range.key ? 'on' : ''}
              onClick={() => setQuery({ range: r.key === 'live' ? null : r.key })}
            >
              {r.label}
            </button>
          ))}
        </div>
        {range.key === 'live' ? (
          <label class="inline">
            Window{' '}
            <select value={String(windowSecs)} onChange={(e) => setQuery({ window: e.currentTarget.value === '900' ? null : e.currentTarget.value })}>
              {LIVE_WINDOWS.map((w) => (
                <option value={String(w.secs)}>{w.label}</option>
              ))}
            </select>
          </label>
        ) : null}
        {firing.length > 0 ? (
          <span class="badge sev-critical">
            {firing.length} alert{firing.length === 1 ? '' : 's'} firing
          </span>
        ) : null}
      </div>

      {range.key === 'live' ? (
        <LiveCharts serverId={server.id} windowSecs={windowSecs} alerts={spans} thresholds={lines} />
      ) : (
        <HistoryCharts serverId={server.id} range={range} alerts={spans} thresholds={lines} />
      )}

      <ProcessesPanel serverId={server.id} />

      <ContainersPanel serverId={server.id} />

      <section class="panel" aria-labelledby="alerts-title">
        <h2 id="alerts-title">Alerts</h2>
        <p class="muted">Shaded on the charts above: amber for warning, red for critical.</p>
        <ErrorText error={alertsError} />
        {alerts === null && !alertsError ? <Loading what="Loading alerts" /> : null}
        {alerts !== null && alerts.length === 0 ? <Empty>No alert has fired on this server.</Empty> : null}
        {alerts !== null && alerts.length > 0 ? (
          <AlertTable
            alerts={alerts}
            showServer={false}
            onChange={(a) => setAlerts((list) => (list ?? []).map((x) => (x.id === a.id ? { ...x, ...a } : x)))}
          />
        ) : null}
      </section>

      <section class="panel" aria-labelledby="thresholds-title">
        <h2 id="thresholds-title">Thresholds</h2>
        <ErrorText error={thresholdsError} />
        {thresholds ? (
          <ThresholdsPanel serverId={server.id} thresholds={thresholds} onSaved={setThresholds} />
        ) : !thresholdsError ? (
          <Loading what="Loading thresholds" />
        ) : null}
      </section>

      <section class="panel" aria-labelledby="logs-title">
        <h2 id="logs-title">Logs</h2>
        <p class="muted">
          <a href={`/logs?serverId=${encodeURIComponent(server.id)}`}>Search all of this server's logs</a>
        </p>
        <LogList query={{ serverId: server.id }} showServer={false} pageSize={20} />
      </section>
    </section>
  );
}
