// Log entries, newest first, paged by the API's cursor (older / newer).

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import type { Query } from '../http';
import { formatDateTime } from '../lib/format';
import type { LogEntry } from '../types';
import { Empty, ErrorText, Loading } from './common';

export function LogList({
  query,
  showServer,
  pageSize = 50,
  names,
}: {
  query: Query;
  showServer: boolean;
  pageSize?: number;
  names?: ReadonlyMap<string, string>;
}) {
  const key = JSON.stringify(query);
  // cursors[i] fetches page i; page 0 has none.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState(0);
  const [state, setState] = useState<{ loading: boolean; error: string | null; items: LogEntry[]; next: string | null }>({
    loading: true,
    error: null,
    items: [],
    next: null,
  });
  const [reload, setReload] = useState(0);

  useEffect(() => {
    setCursors([null]);
    setPage(0);
  }, [key]);

  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    api
      .logs({ ...query, limit: pageSize, cursor: cursors[page] ?? null }, controller.signal)
      .then((p) => setState({ loading: false, error: null, items: p.items, next: p.nextCursor ?? null }))
      .catch((err) => {
        if ((err as Error).name !== 'AbortError') setState({ loading: false, error: errorText(err), items: [], next: null });
      });
    return () => controller.abort();
  }, [key, page, reload, cursors]);

  const older = () => {
    if (!state.next) return;
    const next = [...cursors.slice(0, page + 1), state.next];
    setCursors(next);
    setPage(page + 1);
  };

  return (
    <div class="logs" data-loaded={state.loading ? 'false' : 'true'}>
      <ErrorText error={state.error} retry={() => setReload((n) => n + 1)} />
      {state.loading && state.items.length === 0 ? <Loading what="Loading logs" /> : null}
      {!state.loading && !state.error && state.items.length === 0 ? <Empty>No log entries match.</Empty> : null}
      {state.items.length > 0 ? (
        <div class="table-wrap">
          <table class="list log-table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Level</th>
                {showServer ? <th scope="col">Server</th> : null}
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {state.items.map((l) => (
                <tr key={l.id} class={`lv-${l.level}`}>
                  <td class="nowrap">{formatDateTime(l.timestamp)}</td>
                  <td>
                    <span class={`level level-${l.level}`}>{l.level}</span>
                  </td>
                  {showServer ? (
                    <td>
                      <a href={`/servers/${encodeURIComponent(l.serverId)}`}>{names?.get(l.serverId) ?? l.serverId}</a>
                    </td>
                  ) : null}
                  <td class="message">
                    {l.source ? <span class="source">{l.source}: </span> : null}
                    {l.message}
                    {l.fields && Object.keys(l.fields).length > 0 ? (
                      <details>
                        <summary>fields</summary>
                        <pre>{JSON.stringify(l.fields, null, 2)}</pre>
                      </details>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <div class="pager">
        <button type="button" class="secondary" disabled={page === 0 || state.loading} onClick={() => setPage(page - 1)}>
          ← Newer
        </button>
        <span class="muted">Page {page + 1}</span>
        <button type="button" class="secondary" disabled={!state.next || state.loading} onClick={older}>
          Older →
        </button>
        <button type="button" class="link" onClick={() => setReload((n) => n + 1)}>
          Refresh
        </button>
      </div>
    </div>
  );
}
