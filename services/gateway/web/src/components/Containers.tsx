// The host's containers (Docker or Podman), read again every 5 s: the collector refreshes the
// list every `containers_interval_ms` (5 s by default) when it is given the engine's socket.
// Absent for a host without containers (no socket, or an engine with none).

import { api } from '../api';
import { countText, sortContainers, stateText, stateTone } from '../lib/containers';
import { formatAgo, formatBytes, formatPercent } from '../lib/format';
import { ErrorText, usePolled } from './common';

const EVERY_MS = 5_000;

const TONE_CLASS = { ok: 'status-online', warning: 'sev-warning', critical: 'sev-critical', idle: 'resolved' };

export function ContainersPanel({ serverId }: { serverId: string }) {
  const { value: list, error } = usePolled(serverId, EVERY_MS, (signal) => api.containers(serverId, signal));

  const containers = list?.containers ?? [];
  if (containers.length === 0 && !error) return null;
  return (
    <section class="panel" aria-labelledby="containers-title" data-containers-at={list?.timestamp ?? ''}>
      <h2 id="containers-title">Containers</h2>
      <ErrorText error={error} />
      {containers.length > 0 && list?.timestamp ? (
        <>
          <p class="muted">
            {countText(containers)}; listed {formatAgo(list.timestamp)}. CPU is a share of the whole host; network and
            block I/O are totals since each container started.
          </p>
          <div class="table-wrap containers">
            <table class="list">
              <thead>
                <tr>
                  <th scope="col">Container</th>
                  <th scope="col">State</th>
                  <th scope="col">Health</th>
                  <th scope="col">Restarts</th>
                  <th scope="col">CPU</th>
                  <th scope="col">Memory</th>
                  <th scope="col">Net in / out</th>
                  <th scope="col">Block read / write</th>
                </tr>
              </thead>
              <tbody>
                {sortContainers(containers).map((c) => (
                  <tr key={c.name} data-container={c.name} data-state={c.state}>
                    <td title={c.id}>
                      <strong>{c.name}</strong>
                      <div class="sub">{c.image || c.id}</div>
                    </td>
                    <td>
                      <span class={`badge ${TONE_CLASS[stateTone(c)]}`}>{stateText(c)}</span>
                    </td>
                    <td>{c.health ?? '–'}</td>
                    <td>{c.restarts}</td>
                    <td>{c.state === 'running' ? formatPercent(c.cpuPercent) : '–'}</td>
                    <td>
                      {c.state === 'running' ? formatBytes(c.memoryBytes) : '–'}
                      {c.state === 'running' && c.memoryLimitBytes ? (
                        <div class="sub">of {formatBytes(c.memoryLimitBytes)}</div>
                      ) : null}
                    </td>
                    <td>
                      {formatBytes(c.netRxBytes)} / {formatBytes(c.netTxBytes)}
                    </td>
                    <td>
                      {formatBytes(c.blockReadBytes)} / {formatBytes(c.blockWriteBytes)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}
