// A list of alerts with their times in the browser's zone, an acknowledge button, a silence
// for a firing one, and the notifications each one sent.

import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { ApiError } from '../http';
import { METRIC_NAMES, formatMetricValue } from '../lib/alerts';
import { DASH, formatAgo, formatWhen } from '../lib/format';
import type { Alert } from '../types';
import { ErrorText } from './common';
import { NoticeList } from './Notices';
import { SilenceButton } from './SilenceButton';

export function AlertTable({
  alerts,
  showServer,
  onChange,
}: {
  alerts: readonly Alert[];
  showServer: boolean;
  onChange: (alert: Alert) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const ack = async (alert: Alert) => {
    setBusy(alert.id);
    setError(null);
    try {
      // An alert seen live may not be stored yet (the persister writes every few seconds).
      for (let attempt = 0; ; attempt++) {
        try {
          onChange(await api.acknowledge(alert.id));
          break;
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 404 || attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 2_000));
        }
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };

  return (
    <>
      <ErrorText error={error} />
      <div class="table-wrap">
        <table class="list alerts-table">
          <thead>
            <tr>
              <th scope="col">State</th>
              {showServer ? <th scope="col">Server</th> : null}
              <th scope="col">Alert</th>
              <th scope="col">Started</th>
              <th scope="col">Resolved</th>
              <th scope="col">Acknowledged</th>
              <th scope="col">Notified</th>
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <Fragment key={a.id}>
              <tr class={`al-${a.state}`} data-alert={a.id}>
                <td>
                  <span class={`badge sev-${a.severity}${a.state === 'resolved' ? ' resolved' : ''}`}>
                    {a.state === 'firing' ? `${a.severity}` : 'resolved'}
                  </span>
                </td>
                {showServer ? (
                  <td>
                    <a href={`/servers/${encodeURIComponent(a.serverId)}`}>{a.serverName ?? a.serverId}</a>
                  </td>
                ) : null}
                <td>
                  <strong>{METRIC_NAMES[a.metric] ?? a.metric}</strong>{' '}
                  {a.container ? <code data-container={a.container}>{a.container}</code> : null}{' '}
                  {a.metric !== 'offline' && !a.container && a.value != null ? (
                    <span class="muted">
                      {formatMetricValue(a.metric, a.value)} (threshold {formatMetricValue(a.metric, a.threshold)})
                    </span>
                  ) : null}
                  {a.message ? <div class="sub">{a.message}</div> : null}
                </td>
                <td title={new Date(a.startedAt).toString()}>
                  {formatWhen(a.startedAt)}
                  <div class="sub">{formatAgo(a.startedAt)}</div>
                </td>
                <td>{a.resolvedAt ? formatWhen(a.resolvedAt) : a.state === 'firing' ? 'still firing' : DASH}</td>
                <td>
                  {a.acknowledgedAt ? (
                    <span title={`by ${a.acknowledgedBy ?? 'someone'}`}>{formatWhen(a.acknowledgedAt)}</span>
                  ) : (
                    <button type="button" class="small" disabled={busy === a.id} onClick={() => void ack(a)}>
                      Acknowledge
                    </button>
                  )}
                  {a.state === 'firing' ? (
                    <div class="sub">
                      <SilenceButton serverId={a.serverId} metric={a.metric} />
                    </div>
                  ) : null}
                </td>
                <td>
                  <button
                    type="button"
                    class="small secondary"
                    aria-expanded={open === a.id}
                    onClick={() => setOpen(open === a.id ? null : a.id)}
                  >
                    Notifications
                  </button>
                </td>
              </tr>
              {open === a.id ? (
                <tr class="notices-row" data-notices-of={a.id}>
                  <td colSpan={showServer ? 7 : 6}>
                    <NoticeList load={() => api.alertNotifications(a.id)} showChannel />
                  </td>
                </tr>
              ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
