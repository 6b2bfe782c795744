// The fleet: every server the user may see, live. Rows are virtual (only those on screen exist),
// redrawn once a second from the store; the store is fed by the fleet subscription (one for the
// whole fleet: the list, its changes, and every server's newest headline about once a second).

import { render } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Spark } from '../charts/Spark';
import { AddServer } from '../components/AddServer';
import { Empty, ErrorText, Loading, SeverityBadge, StatusBadge } from '../components/common';
import { type FleetRow, matches, parseSort, rowStatus, type SortDir, type SortKey, sortRows, visibleRange } from '../lib/fleet';
import { formatAgo, formatPercent, formatRate, formatUptime } from '../lib/format';
import { schedule, setPerfLabel } from '../lib/frame';
import { setQuery, useRoute } from '../router';
import { fleet, SPARK_SECS } from '../stores/fleet';
import { api } from '../api';
import { toSecs } from '../lib/samples';

const COLUMNS: { key: SortKey; label: string; class: string }[] = [
  { key: 'name', label: 'Server', class: 'c-name' },
  { key: 'status', label: 'Status', class: 'c-status' },
  { key: 'cpu', label: 'CPU', class: 'c-num c-cpu' },
  { key: 'memory', label: 'Memory', class: 'c-num c-mem' },
  { key: 'disk', label: 'Disk', class: 'c-num c-disk' },
  { key: 'network', label: 'Network', class: 'c-num c-net' },
  { key: 'alerts', label: 'Alerts', class: 'c-alerts' },
];

const narrowQuery = window.matchMedia('(max-width: 720px)');
const rowHeight = () => (narrowQuery.matches ? 84 : 46);

function level(value: number | undefined, warn: number, crit: number): string {
  if (value === undefined) return '';
  return value >= crit ? ' crit' : value >= warn ? ' warn' : '';
}

/** Servers whose sparkline history was asked for (once per page load). */
const prefilled = new Set<string>();
const prefillQueue: FleetRow[] = [];
let prefilling = 0;

/**
 * Sparklines on screen get the minutes before the page opened from the stored per-second
 * history (three requests at a time); the live stream carries them on.
 */
function prefillSparks(rows: readonly FleetRow[]): void {
  for (const row of rows) {
    if (prefilled.has(row.server.id)) continue;
    prefilled.add(row.server.id);
    prefillQueue.push(row);
  }
  while (prefilling < 3 && prefillQueue.length > 0) {
    const row = prefillQueue.shift()!;
    prefilling += 1;
    const to = new Date();
    const from = new Date(to.getTime() - SPARK_SECS * 1000);
    api
      .history(row.server.id, from, to, '1s')
      .then((h) => row.spark.prepend(h.points.map((p) => ({ t: toSecs(p.t), v: p.cpu.avg ?? Number.NaN }))))
      .catch(() => undefined)
      .finally(() => {
        prefilling -= 1;
        prefillSparks([]);
      });
  }
}

function Row({ row, index, now, tick }: { row: FleetRow; index: number; now: number; tick: number }) {
  const l = row.latest;
  const status = rowStatus(row, now);
  const s = row.server;
  return (
    <div class={`frow st-${status}`} role="row" aria-rowindex={index + 2} data-server={s.id} style={{ top: `${index * rowHeight()}px` }}>
      <div class="c-name" role="cell">
        <a href={`/servers/${encodeURIComponent(s.id)}`} class="server-link">
          {s.name}
        </a>
        <span class="sub">
          {s.hostname && s.hostname !== s.name ? s.hostname : ''}
          {s.tags.length > 0 ? <span class="tags">{s.tags.map((t) => ` #${t}`)}</span> : null}
          {!s.ownerId ? <span class="tag-discovered"> discovered</span> : null}
        </span>
      </div>
      <div class="c-status" role="cell">
        <StatusBadge status={status} />
        <span class="sub">{status === 'online' && l?.uptimeSecs != null ? `up ${formatUptime(l.uptimeSecs)}` : l ? formatAgo(l.t * 1000, now * 1000) : ''}</span>
      </div>
      <div class={`c-num c-cpu${level(l?.cpu, 80, 90)}`} role="cell" data-label="CPU">
        {formatPercent(l?.cpu)}
      </div>
      <div class={`c-num c-mem${level(l?.memory, 80, 90)}`} role="cell" data-label="Mem">
        {formatPercent(l?.memory)}
      </div>
      <div class={`c-num c-disk${level(l?.disk, 85, 95)}`} role="cell" data-label="Disk">
        {formatPercent(l?.disk)}
      </div>
      <div class="c-num c-net" role="cell" data-label="Net">
        {formatRate(l?.network)}
      </div>
      <div class="c-spark" role="cell">
        <Spark spark={row.spark} version={tick} label={`CPU of ${s.name}, last 5 minutes`} />
      </div>
      <div class="c-alerts" role="cell">
        <SeverityBadge severity={row.alerts.severity} count={row.alerts.count} />
      </div>
    </div>
  );
}

function Rows({ rows, start, end, now, tick }: { rows: FleetRow[]; start: number; end: number; now: number; tick: number }) {
  const out = [];
  // Keyed by slot, not by server: scrolling reuses the rows (and their sparklines) in place.
  for (let i = start; i < end; i++) out.push(<Row key={i - start} row={rows[i]!} index={i} now={now} tick={tick} />);
  return <>{out}</>;
}

export function FleetPage() {
  const route = useRoute();
  const search = route.query.get('q') ?? '';
  const sort = parseSort(route.query.get('sort'));
  const [loaded, setLoaded] = useState(fleet.loaded);
  const [error, setError] = useState(fleet.error);
  const [listVersion, setListVersion] = useState(fleet.listVersion);
  const [shown, setShown] = useState(0);
  const adding = route.query.get('add') === '1';
  const viewport = useRef<HTMLDivElement>(null);
  const rowsBox = useRef<HTMLDivElement>(null);
  const ordered = useRef<FleetRow[]>([]);
  const tick = useRef(0);
  const owner = useMemo(() => ({}), []);

  useEffect(() => {
    setPerfLabel('fleet');
    // The subscription lists the fleet and announces what changes in it: no re-reading of the
    // list (the firing alerts were read at sign-in and follow the alert stream).
    const stopStream = fleet.stream();
    const stop = fleet.subscribe(() => {
      setLoaded(fleet.loaded);
      setError(fleet.error);
      setListVersion(fleet.listVersion);
    });
    return () => {
      stopStream();
      stop();
    };
  }, []);

  const draw = () => {
    const box = rowsBox.current;
    const view = viewport.current;
    if (!box || !view) return;
    const now = Date.now() / 1000;
    const all = [...fleet.rows.values()].filter((r) => matches(r.server, search));
    sortRows(all, sort.key, sort.dir, now);
    ordered.current = all;
    const h = rowHeight();
    const { start, end } = visibleRange(view.scrollTop, view.clientHeight || 600, h, all.length);
    box.style.height = `${all.length * h}px`;
    tick.current += 1;
    render(<Rows rows={all} start={start} end={end} now={now} tick={tick.current} />, box);
    if (all.length !== shown) setShown(all.length);
    prefillSparks(all.slice(start, end));
  };
  const drawRef = useRef(draw);
  drawRef.current = draw;

  // Redraw once a second while samples arrive, and at once when the view changes.
  useLayoutEffect(() => {
    drawRef.current();
  }, [search, sort.key, sort.dir, listVersion, loaded]);

  useEffect(() => {
    let seen = fleet.version;
    const clock = setInterval(() => {
      if (fleet.version === seen && document.visibilityState !== 'visible') return;
      seen = fleet.version;
      schedule(owner, () => drawRef.current(), 'fleet');
    }, 1000);
    const view = viewport.current;
    const onScroll = () => schedule(owner, () => drawRef.current());
    view?.addEventListener('scroll', onScroll, { passive: true });
    narrowQuery.addEventListener('change', onScroll);
    return () => {
      clearInterval(clock);
      view?.removeEventListener('scroll', onScroll);
      narrowQuery.removeEventListener('change', onScroll);
      if (rowsBox.current) render(null, rowsBox.current);
    };
  }, [owner]);

  const setSort = (key: SortKey) => {
    const dir: SortDir = sort.key === key ? (sort.dir === 'asc' ? 'desc' : 'asc') : key === 'name' ? 'asc' : 'desc';
    setQuery({ sort: key === 'name' && dir === 'asc' ? null : `${key}:${dir}` });
  };

  const total = fleet.rows.size;
  return (
    <section class="page fleet" aria-labelledby="fleet-title">
      <div class="page-head">
        <h1 id="fleet-title">Fleet</h1>
        <p class="muted" aria-live="polite">
          {loaded ? (search ? `${shown} of ${total} servers` : `${total} server${total === 1 ? '' : 's'}`) : ''}
        </p>
        <label class="sort-select">
          <span class="sr-only">Sort by</span>
          <select
            value={`${sort.key}:${sort.dir}`}
            onChange={(e) => {
              const v = e.currentTarget.value;
              setQuery({ sort: v === 'name:asc' ? null : v });
            }}
          >
            {COLUMNS.flatMap((c) => [
              <option value={`${c.key}:desc`}>{`${c.label} ↓`}</option>,
              <option value={`${c.key}:asc`}>{`${c.label} ↑`}</option>,
            ])}
          </select>
        </label>
        <input
          type="search"
          class="search"
          placeholder="Search name, host, tag"
          aria-label="Search servers by name, host name or tag"
          value={search}
          onInput={(e) => setQuery({ q: e.currentTarget.value })}
        />
        <button type="button" class="add-server-button" aria-expanded={adding} onClick={() => setQuery({ add: adding ? null : '1' })}>
          Add server
        </button>
      </div>
      {adding ? <AddServer onClose={() => setQuery({ add: null })} /> : null}
      <ErrorText error={error} retry={() => void fleet.load()} />
      {!loaded ? <Loading what="Loading the fleet" /> : null}
      {loaded && !error && total === 0 ? (
        <Empty>
          No servers yet. <button type="button" class="link" onClick={() => setQuery({ add: '1' })}>Add a server</button>: one
          command on the host installs and enrols its collector, and it appears here within seconds (admins also see
          servers reported by the stack's own collector, as discovered).
        </Empty>
      ) : null}
      {loaded && total > 0 && shown === 0 ? <Empty>No server matches “{search}”.</Empty> : null}
      <div class="fleet-table" role="table" aria-label="Servers" aria-rowcount={shown + 1} hidden={!loaded || total === 0}>
        <div class="frow fhead" role="row" aria-rowindex={1}>
          {COLUMNS.slice(0, 6).map((c) => (
            <div
              class={c.class}
              role="columnheader"
              aria-sort={sort.key === c.key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
            >
              <button type="button" class="sort" onClick={() => setSort(c.key)}>
                {c.label}
                <span aria-hidden="true">{sort.key === c.key ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
              </button>
            </div>
          ))}
          <div class="c-spark" role="columnheader">
            CPU, 5 min
          </div>
          <div
            class="c-alerts"
            role="columnheader"
            aria-sort={sort.key === 'alerts' ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
          >
            <button type="button" class="sort" onClick={() => setSort('alerts')}>
              Alerts
              <span aria-hidden="true">{sort.key === 'alerts' ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
            </button>
          </div>
        </div>
        <div class="fleet-scroll" ref={viewport} tabIndex={-1}>
          <div class="fleet-rows" ref={rowsBox} />
        </div>
      </div>
    </section>
  );
}
