// "Silence for 2 h": a maintenance window over a server (or one of its metrics) from where the
// operator is looking at it. Transitions are still recorded and shown; no one is notified.

import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { formatDateTime } from '../lib/format';
import type { Silence } from '../types';

const DURATIONS: [number, string][] = [
  [30 * 60, '30 min'],
  [2 * 3600, '2 h'],
  [8 * 3600, '8 h'],
  [24 * 3600, '1 day'],
];

export function SilenceButton({
  serverId,
  metric,
  onCreated,
}: {
  serverId: string;
  /** `undefined`: every metric of the server. */
  metric?: string;
  onCreated?: (silence: Silence) => void;
}) {
  const [secs, setSecs] = useState(2 * 3600);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<Silence | null>(null);
  const [error, setError] = useState<string | null>(null);
  const what = metric ? `${metric} on ${serverId}` : serverId;

  const silence = async () => {
    setBusy(true);
    setError(null);
    try {
      const created = await api.createSilence({
        serverId,
        metric: metric ?? null,
        durationSecs: secs,
        comment: `Silenced from the dashboard`,
      });
      setDone(created);
      onCreated?.(created);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  if (done)
    return (
      <span class="silenced" role="status">
        Silenced until {formatDateTime(done.endsAt)}
      </span>
    );
  return (
    <span class="silence-button">
      <button type="button" class="small secondary" disabled={busy} onClick={() => void silence()}
        aria-label={`Silence ${what}`}>
        Silence for
      </button>{' '}
      <select aria-label="Silence duration" value={secs} onChange={(e) => setSecs(Number(e.currentTarget.value))}>
        {DURATIONS.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
      {error ? (
        <span class="error-text" role="alert">
          {' '}
          {error}
        </span>
      ) : null}
    </span>
  );
}
