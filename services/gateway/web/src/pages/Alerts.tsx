// Alerts, firing and resolved, filtered, paged, and kept current by the live alert stream.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { AlertTable } from '../components/AlertTable';
import { Empty, ErrorText, Loading } from '../components/common';
import { ServerSelect, useServerNames } from '../components/ServerSelect';
import { applyEvent } from '../lib/alerts';
import { fromLocalInput, toLocalInput } from '../lib/format';
import { live } from '../live';
import { withRecent } from '../stores/recentAlerts';
import { setQuery, useRoute } from '../router';
import type { Alert } from '../types';

export function AlertsPage() {
  const route = useRoute();
  const q = route.query;
  const state = q.get('state') ?? 'firing';
  const severity = q.get('severity') ?? '';
  const serverId = q.get('serverId') ?? '';
  const from = q.get('from') ?? '';
  const to = q.get('to') ?? '';
  const names = useServerNames();
  const [items, setItems] = useState<Alert[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const query = {
    state: state === 'all' ? null : state,
    severity: severity || null,
    serverId: serverId || null,
    from: from || null,
    to: to || null,
  };
  const key = JSON.stringify(query);
  const matchesFilters = (a: Alert) =>
    (state === 'all' || a.state === state) &&
    (!severity || a.severity === severity) &&
    (!serverId || a.serverId === serverId) &&
    (!from || Date.parse(a.startedAt) >= Date.parse(from)) &&
    (!to || Date.parse(a.startedAt) < Date.parse(to));

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    setError(null);
    api
      .alerts({ ...query, limit: 100 }, controller.signal)
      .then((p) => {
        setItems(withRecent(p.items, matchesFilters));
        setNext(p.nextCursor ?? null);
        setLoading(false);
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        setError(errorText(err));
        setLoading(false);
      });
    return () => controller.abort();
  }, [key, reload]);

  useEffect(() => {
    const stop = live.onAlert((e) => {
      setItems((list) => applyEvent(list, e).filter((a) => a.id !== e.alertId || matchesFilters(a)));
    });
    const stopReconnect = live.onReconnect(() => setReload((n) => n + 1));
    return () => {
      stop();
      stopReconnect();
    };
  }, [key]);

  const more = async () => {
    if (!next) return;
    try {
      const p = await api.alerts({ ...query, limit: 100, cursor: next });
      setItems((list) => [...list, ...p.items.filter((a) => !list.some((b) => b.id === a.id))]);
      setNext(p.nextCursor ?? null);
    } catch (err) {
      setError(errorText(err));
    }
  };

  const named = items.map((a) => (a.serverName ? a : { ...a, serverName: names.get(a.serverId) ?? null }));
  return (
    <section class="page" aria-labelledby="alerts-page-title" data-loaded={loading ? 'false' : 'true'}>
      <div class="page-head">
        <h1 id="alerts-page-title">Alerts</h1>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state} onChange={(e) => setQuery({ state: e.currentTarget.value === 'firing' ? null : e.currentTarget.value })}>
            <option value="firing">Firing</option>
            <option value="resolved">Resolved</option>
            <option value="all">All</option>
          </select>
        </label>
        <label>
          Severity
          <select value={severity} onChange={(e) => setQuery({ severity: e.currentTarget.value })}>
            <option value="">Any</option>
            <option value="warning">Warning</option>
            <option value="critical">Critical</option>
          </select>
        </label>
        <ServerSelect value={serverId} onChange={(id) => setQuery({ serverId: id })} />
        <label>
          Started after
          <input
            type="datetime-local"
            value={from ? toLocalInput(new Date(from)) : ''}
            onChange={(e) => setQuery({ from: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
        <label>
          Started before
          <input
            type="datetime-local"
            value={to ? toLocalInput(new Date(to)) : ''}
            onChange={(e) => setQuery({ to: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
      </form>
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {loading ? <Loading what="Loading alerts" /> : null}
      {!loading && !error && items.length === 0 ? (
        <Empty>{state === 'firing' ? 'Nothing is firing. All quiet.' : 'No alert matches these filters.'}</Empty>
      ) : null}
      {items.length > 0 ? (
        <AlertTable
          alerts={named}
          showServer
          onChange={(a) => setItems((list) => list.map((x) => (x.id === a.id ? { ...x, ...a } : x)))}
        />
      ) : null}
      {next ? (
        <div class="pager">
          <button type="button" class="secondary" onClick={() => void more()}>
            Load older alerts
          </button>
        </div>
      ) : null}
    </section>
  );
}
