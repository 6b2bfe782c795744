// What reached people: the notices sent for an alert or to a channel, each with every delivery
// attempt (outcome, latency, error), as the alerter recorded them.

import { useEffect, useState } from 'preact/hooks';
import { errorText } from '../api';
import { formatDateTime } from '../lib/format';
import type { Notification } from '../types';
import { Empty, ErrorText, Loading } from './common';

const STATUS: Record<Notification['status'], string> = {
  sending: 'sending',
  delivered: 'delivered',
  given_up: 'given up',
  unknown: 'unknown (its alerter stopped while sending)',
};

export function NoticeList({
  load,
  refresh = 0,
  showChannel,
}: {
  load: () => Promise<Notification[]>;
  /** Changes when the list should be read again. */
  refresh?: number;
  showChannel: boolean;
}) {
  const [notices, setNotices] = useState<Notification[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [again, setAgain] = useState(0);

  useEffect(() => {
    let stale = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    load()
      .then((n) => {
        if (stale) return;
        setNotices(n);
        setError(null);
        // A notice still being sent (or retried): read again until it settles.
        if (n.some((notice) => notice.status === 'sending')) timer = setTimeout(() => setAgain((k) => k + 1), 2_000);
      })
      .catch((err) => !stale && setError(errorText(err)));
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [refresh, again]);

  if (error) return <ErrorText error={error} retry={() => setAgain((n) => n + 1)} />;
  if (notices === null) return <Loading what="Loading notifications" />;
  if (notices.length === 0)
    return <Empty>Nothing sent: no channel matched, it was silenced, grouped into another notice, or not yet sent.</Empty>;
  return (
    <ul class="notices" aria-label="Notifications">
      {notices.map((n) => (
        <li key={n.id} data-notice={n.id} data-status={n.status}>
          <div>
            <span class={`badge notice-${n.status}`}>{STATUS[n.status]}</span>{' '}
            {showChannel ? <strong>{n.channelName}</strong> : null} {n.summary}
            {n.test ? <span class="muted"> (test)</span> : null}
            {n.repeat ? <span class="muted"> (repeat)</span> : null}
            <span class="sub"> {formatDateTime(n.createdAt)}</span>
          </div>
          {n.attempts.length > 0 ? (
            <ol class="attempts">
              {n.attempts.map((a) => (
                <li key={a.attempt} data-outcome={a.outcome}>
                  {a.outcome} in {Math.round(a.latencyMs)} ms at {formatDateTime(a.at)}
                  {a.error ? <span class="error-text">: {a.error}</span> : null}
                </li>
              ))}
            </ol>
          ) : null}
        </li>
      ))}
    </ul>
  );
}
