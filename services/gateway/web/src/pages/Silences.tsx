// Silences and maintenance windows: while one matches (its server, every one of its tags, its
// metric), transitions are recorded and shown but no one is notified.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { Empty, ErrorText, Loading } from '../components/common';
import { ServerSelect, useServerNames } from '../components/ServerSelect';
import { METRIC_NAMES } from '../lib/alerts';
import { formatDateTime, fromLocalInput, toLocalInput } from '../lib/format';
import type { Silence } from '../types';

/** What a silence covers, in words. */
export function silenceScope(s: Silence, names: Map<string, string>): string {
  const server = s.serverId ? (names.get(s.serverId) ?? s.serverId) : 'every server';
  const tags = s.tags.length > 0 ? ` tagged ${s.tags.join(', ')}` : '';
  const metric = s.metric ? `${METRIC_NAMES[s.metric] ?? s.metric} only` : 'every alert';
  return `${server}${tags}: ${metric}`;
}

export function SilencesPage() {
  const names = useServerNames();
  const [silences, setSilences] = useState<Silence[] | null>(null);
  const [expired, setExpired] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [serverId, setServerId] = useState('');
  const [tags, setTags] = useState('');
  const [metric, setMetric] = useState('');
  const [start, setStart] = useState('');
  const [end, setEnd] = useState(() => toLocalInput(new Date(Date.now() + 2 * 3600_000)));
  const [comment, setComment] = useState('');
  const [formError, setFormError] = useState<string | null>(null);

  useEffect(() => {
    api
      .silences(expired)
      .then((s) => {
        setSilences(s);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [reload, expired]);

  const create = async (event: Event) => {
    event.preventDefault();
    setFormError(null);
    const endsAt = fromLocalInput(end);
    if (!endsAt) {
      setFormError('Choose when the silence ends.');
      return;
    }
    try {
      await api.createSilence({
        serverId: serverId || null,
        tags: tags
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
        metric: metric || null,
        ...(start ? { startsAt: fromLocalInput(start) ?? undefined } : {}),
        endsAt,
        comment: comment.trim(),
      });
      setComment('');
      setReload((n) => n + 1);
    } catch (err) {
      setFormError(errorText(err));
    }
  };

  const endNow = async (s: Silence) => {
    try {
      await api.endSilence(s.id);
      setReload((n) => n + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section class="page" aria-labelledby="silences-title">
      <div class="page-head">
        <h1 id="silences-title">Silences</h1>
      </div>
      <p class="muted">
        During a silence, alerts still fire, resolve and show here and on NATS; no channel is notified. Your silences
        cover only your servers.
      </p>
      <label class="inline">
        <input type="checkbox" checked={expired} onChange={(e) => setExpired(e.currentTarget.checked)} /> Show the
        last 30 days' expired silences
      </label>
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {silences === null && !error ? <Loading what="Loading silences" /> : null}
      {silences !== null && silences.length === 0 ? <Empty>No silence: every alert is notified.</Empty> : null}
      {silences && silences.length > 0 ? (
        <div class="table-wrap">
          <table class="list silences">
            <thead>
              <tr>
                <th scope="col">Status</th>
                <th scope="col">Covers</th>
                <th scope="col">From</th>
                <th scope="col">Until</th>
                <th scope="col">By</th>
                <th scope="col">Comment</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {silences.map((s) => (
                <tr key={s.id} data-silence={s.id} data-status={s.status} data-server={s.serverId ?? ''}>
                  <td>
                    <span class={`badge silence-${s.status}`}>{s.status}</span>
                  </td>
                  <td>{silenceScope(s, names)}</td>
                  <td>{formatDateTime(s.startsAt)}</td>
                  <td>{formatDateTime(s.endsAt)}</td>
                  <td>{s.author}</td>
                  <td class="message">{s.comment || '–'}</td>
                  <td>
                    {s.status !== 'expired' ? (
                      <button type="button" class="small" onClick={() => void endNow(s)}>
                        End now
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h2 class="section-title">New maintenance window</h2>
      <form class="filters" aria-label="New silence" onSubmit={(e) => void create(e)}>
        <ServerSelect value={serverId} onChange={setServerId} />
        <label>
          Tags (all of them)
          <input placeholder="prod, db" value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
        </label>
        <label>
          Alert
          <select value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
            <option value="">Every alert</option>
            {['cpu', 'memory', 'disk', 'offline'].map((m) => (
              <option key={m} value={m}>
                {METRIC_NAMES[m] ?? m}
              </option>
            ))}
          </select>
        </label>
        <label>
          Starts (empty: now)
          <input type="datetime-local" value={start} onInput={(e) => setStart(e.currentTarget.value)} />
        </label>
        <label>
          Ends
          <input type="datetime-local" required value={end} onInput={(e) => setEnd(e.currentTarget.value)} />
        </label>
        <label>
          Comment
          <input value={comment} placeholder="Kernel upgrade" onInput={(e) => setComment(e.currentTarget.value)} />
        </label>
        <button type="submit">Silence</button>
      </form>
      <ErrorText error={formError} />
    </section>
  );
}
