// What is eating the host: its top processes by CPU and by memory, read again every 5 s (the
// collector lists them every `processes_interval_ms`, 5 s by default).

import { api } from '../api';
import { formatAgo, formatBytes, formatPercent } from '../lib/format';
import type { ProcessUsage } from '../types';
import { ErrorText, usePolled } from './common';

const EVERY_MS = 5_000;

function Table({ title, list, by }: { title: string; list: ProcessUsage[]; by: 'cpu' | 'memory' }) {
  return (
    <div class="table-wrap processes" data-processes={by}>
      <table class="list">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">Process</th>
            <th scope="col">User</th>
            <th scope="col">CPU</th>
            <th scope="col">Memory</th>
          </tr>
        </thead>
        <tbody>
          {list.map((p) => (
            <tr key={p.pid} data-pid={p.pid}>
              <td title={p.command || p.name}>
                <strong>{p.name}</strong> <span class="sub">{p.pid}</span>
              </td>
              <td>{p.user ?? '–'}</td>
              <td>{formatPercent(p.cpuPercent)}</td>
              <td>{formatBytes(p.residentBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ProcessesPanel({ serverId }: { serverId: string }) {
  const { value: list, error } = usePolled(serverId, EVERY_MS, (signal) => api.processes(serverId, signal));

  if (!list?.timestamp && !error) return null;
  return (
    <section class="panel" aria-labelledby="processes-title" data-processes-at={list?.timestamp ?? ''}>
      <h2 id="processes-title">Top processes</h2>
      <ErrorText error={error} />
      {list?.timestamp ? (
        <>
          <p class="muted">Listed {formatAgo(list.timestamp)}; CPU is a share of the whole host.</p>
          <div class="processes-pair">
            <Table title="By CPU" list={list.byCpu} by="cpu" />
            <Table title="By memory" list={list.byMemory} by="memory" />
          </div>
        </>
      ) : null}
    </section>
  );
}
