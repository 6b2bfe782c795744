// The live connection's state, always visible in the header.

import { useEffect, useState } from 'preact/hooks';
import { live, type LiveStatus } from '../live';

export function Connection() {
  const [status, setStatus] = useState<LiveStatus>(() => live.status());
  const [, tick] = useState(0);

  useEffect(() => live.onStatus(setStatus), []);
  useEffect(() => {
    if (status.state !== 'waiting') return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [status.state]);

  let text: string;
  switch (status.state) {
    case 'open':
      text = 'Live';
      break;
    case 'connecting':
      text = 'Connecting…';
      break;
    case 'waiting': {
      const secs = Math.max(0, Math.ceil(((status.retryAt ?? Date.now()) - Date.now()) / 1000));
      text = secs > 0 ? `Reconnecting in ${secs} s` : 'Reconnecting…';
      break;
    }
    case 'offline':
      text = 'Offline';
      break;
    default:
      text = 'Not streaming';
  }
  const what = [status.fleet ? 'the fleet' : '', status.servers > 0 ? `${status.servers} server${status.servers === 1 ? '' : 's'}` : '']
    .filter(Boolean)
    .join(' and ');
  const title =
    status.state === 'open'
      ? `Streaming ${what || 'alerts'} over ${status.sockets} socket${status.sockets === 1 ? '' : 's'}`
      : (status.reason ?? text);
  return (
    <div class={`connection conn-${status.state}`} role="status" aria-live="polite" title={title} data-state={status.state}>
      <span class="dot" aria-hidden="true" />
      <span class="conn-text">{text}</span>
      {status.state === 'waiting' || status.state === 'offline' ? (
        <button type="button" class="link" onClick={() => live.retryNow()}>
          Retry now
        </button>
      ) : null}
    </div>
  );
}
