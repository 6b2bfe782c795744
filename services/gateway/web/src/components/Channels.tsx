// Notification channels (admins): where the alerter sends notices, of every kind it speaks,
// each routed by severity and server tags, with a "send test" and its recent deliveries.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { formatDateTime, formatDuration } from '../lib/format';
import type { Channel, ChannelKind, NewChannel } from '../types';
import { Empty, ErrorText, Loading } from './common';
import { NoticeList } from './Notices';

export const KIND_NAMES: Record<ChannelKind, string> = {
  webhook: 'Webhook (FLick JSON, HMAC-signed)',
  standard_webhook: 'Standard Webhooks',
  slack: 'Slack incoming webhook',
  discord: 'Discord webhook',
  telegram: 'Telegram bot',
  ntfy: 'ntfy',
  email: 'E-mail (SMTP)',
};

const URL_HINT: Record<ChannelKind, { label: string; placeholder: string; value?: string }> = {
  webhook: { label: 'Webhook URL', placeholder: 'https://…' },
  standard_webhook: { label: 'Webhook URL', placeholder: 'https://…' },
  slack: { label: 'Incoming webhook URL', placeholder: 'https://hooks.slack.com/services/…' },
  discord: { label: 'Webhook URL', placeholder: 'https://discord.com/api/webhooks/…' },
  telegram: { label: 'Bot API URL', placeholder: 'https://api.telegram.org', value: 'https://api.telegram.org' },
  ntfy: { label: 'Topic URL', placeholder: 'https://ntfy.sh/your-topic' },
  email: { label: 'SMTP server', placeholder: 'smtp://mail.example.com:587 (STARTTLS) or smtps://…:465' },
};

interface Form {
  name: string;
  kind: ChannelKind;
  url: string;
  secret: string;
  signingSecret: string;
  header: string;
  chatId: string;
  from: string;
  to: string;
  username: string;
  criticalOnly: boolean;
  tags: string;
  repeatMinutes: string;
}

const EMPTY: Form = {
  name: '',
  kind: 'webhook',
  url: '',
  secret: '',
  signingSecret: '',
  header: '',
  chatId: '',
  from: '',
  to: '',
  username: '',
  criticalOnly: false,
  tags: '',
  repeatMinutes: '',
};

const list = (text: string) =>
  text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/** The request for a form, or the sentence saying what is missing. */
export function channelRequest(f: Form): NewChannel | string {
  const body: NewChannel = {
    name: f.name.trim(),
    kind: f.kind,
    url: f.url.trim(),
    criticalOnly: f.criticalOnly,
    tags: list(f.tags),
    repeatSecs: f.repeatMinutes.trim() ? Math.round(Number(f.repeatMinutes) * 60) : null,
  };
  if (body.repeatSecs !== null && body.repeatSecs !== undefined && !(body.repeatSecs >= 60)) {
    return 'Repeat every: a number of minutes, at least 1, or empty for never.';
  }
  if (f.secret) body.secret = f.secret;
  if (f.signingSecret) body.signingSecret = f.signingSecret;
  if (f.header.trim()) {
    const at = f.header.indexOf(':');
    if (at <= 0) return 'Write the header as "Name: value", for example "Authorization: Bearer …".';
    body.headers = { [f.header.slice(0, at).trim()]: f.header.slice(at + 1).trim() };
  }
  if (f.kind === 'telegram') body.settings = { chatId: f.chatId.trim() };
  if (f.kind === 'email') {
    body.settings = { from: f.from.trim(), to: list(f.to), ...(f.username.trim() ? { username: f.username.trim() } : {}) };
  }
  return body;
}

function Route({ c }: { c: Channel }) {
  const parts = [c.criticalOnly ? 'critical only' : 'every severity'];
  parts.push(c.tags.length > 0 ? `servers tagged ${c.tags.join(' or ')}` : 'every server');
  if (c.repeatSecs) parts.push(`repeats every ${formatDuration(c.repeatSecs)}`);
  return <>{parts.join(', ')}</>;
}

function ChannelRow({ c, onDelete }: { c: Channel; onDelete: () => void }) {
  const [open, setOpen] = useState(false);
  const [sent, setSent] = useState(0);
  const [status, setStatus] = useState<string | null>(null);

  const test = async () => {
    setStatus(null);
    try {
      await api.testChannel(c.id);
      setStatus('Test queued: the alerter sends it within a second or two.');
      setOpen(true);
      // Read the deliveries again once the alerter has had time to pick the test up; the
      // list keeps reading while a notice is being sent.
      for (const wait of [1_500, 5_000]) setTimeout(() => setSent((n) => n + 1), wait);
    } catch (err) {
      setStatus(errorText(err));
    }
  };

  return (
    <>
      <tr data-channel={c.name}>
        <td>{c.name}</td>
        <td>{KIND_NAMES[c.kind] ?? c.kind}</td>
        <td class="message">{c.url}</td>
        <td>
          <Route c={c} />
        </td>
        <td>
          {[c.signed ? 'signed' : null, c.hasSecret ? 'secret stored' : null, ...c.headerNames]
            .filter(Boolean)
            .join(', ') || '–'}
        </td>
        <td>{formatDateTime(c.createdAt)}</td>
        <td class="actions">
          <button type="button" class="small" onClick={() => void test()}>
            Send test
          </button>{' '}
          <button type="button" class="small secondary" aria-expanded={open} onClick={() => setOpen(!open)}>
            Deliveries
          </button>{' '}
          <button type="button" class="small danger" onClick={onDelete}>
            Delete
          </button>
          {status ? (
            <div class="sub" role="status">
              {status}
            </div>
          ) : null}
        </td>
      </tr>
      {open ? (
        <tr class="notices-row" data-deliveries-of={c.name}>
          <td colSpan={7}>
            <NoticeList load={() => api.channelNotifications(c.id)} refresh={sent} showChannel={false} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function Channels() {
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [form, setForm] = useState<Form>(EMPTY);
  const [formError, setFormError] = useState<string | null>(null);
  const set = (changes: Partial<Form>) => setForm((f) => ({ ...f, ...changes }));
  const input = (key: keyof Form) => (e: { currentTarget: HTMLInputElement }) => set({ [key]: e.currentTarget.value });

  useEffect(() => {
    api
      .channels()
      .then((c) => {
        setChannels(c);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [reload]);

  const add = async (event: Event) => {
    event.preventDefault();
    setFormError(null);
    const body = channelRequest(form);
    if (typeof body === 'string') {
      setFormError(body);
      return;
    }
    try {
      await api.createChannel(body);
      setForm(EMPTY);
      setReload((n) => n + 1);
    } catch (err) {
      setFormError(errorText(err));
    }
  };

  const remove = async (c: Channel) => {
    if (!confirm(`Delete the channel “${c.name}”? Alerts will no longer be sent to ${c.url}.`)) return;
    try {
      await api.deleteChannel(c.id);
      setReload((n) => n + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  const kind = form.kind;
  const hint = URL_HINT[kind];
  return (
    <section class="panel" aria-labelledby="admin-channels">
      <h2 id="admin-channels">Notification channels</h2>
      <p class="muted">
        One notice per incident: a critical replaces its warning, an offline server's metric alerts are not sent, and
        what fires together within the grouping window is one message. Secrets and URLs that are credentials are
        sealed and never shown again.
      </p>
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {channels === null && !error ? <Loading what="Loading channels" /> : null}
      {channels !== null && channels.length === 0 ? <Empty>No channel yet: alerts are only shown here.</Empty> : null}
      {channels && channels.length > 0 ? (
        <div class="table-wrap">
          <table class="list channels">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Address</th>
                <th scope="col">Sends</th>
                <th scope="col">Secrets</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {channels.map((c) => (
                <ChannelRow key={c.id} c={c} onDelete={() => void remove(c)} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <form class="filters channel-form" aria-label="New channel" onSubmit={(e) => void add(e)}>
        <label>
          Kind
          <select
            value={kind}
            onChange={(e) => {
              const next = e.currentTarget.value as ChannelKind;
              set({ kind: next, url: URL_HINT[next].value ?? '' });
            }}
          >
            {(Object.keys(KIND_NAMES) as ChannelKind[]).map((k) => (
              <option key={k} value={k}>
                {KIND_NAMES[k]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input required value={form.name} onInput={input('name')} />
        </label>
        <label>
          {hint.label}
          <input required placeholder={hint.placeholder} value={form.url} onInput={input('url')} />
        </label>
        {kind === 'webhook' || kind === 'standard_webhook' ? (
          <label>
            {kind === 'standard_webhook' ? 'Signing secret (whsec_…)' : 'Signing secret (optional)'}
            <input
              type="password"
              autocomplete="off"
              required={kind === 'standard_webhook'}
              value={form.signingSecret}
              onInput={input('signingSecret')}
            />
          </label>
        ) : null}
        {kind === 'webhook' ? (
          <label>
            Extra header (optional)
            <input placeholder="Authorization: Bearer …" value={form.header} onInput={input('header')} />
          </label>
        ) : null}
        {kind === 'telegram' ? (
          <label>
            Chat id
            <input required placeholder="-1001234567890 or @channel" value={form.chatId} onInput={input('chatId')} />
          </label>
        ) : null}
        {kind === 'email' ? (
          <>
            <label>
              From
              <input required type="email" value={form.from} onInput={input('from')} />
            </label>
            <label>
              To (comma-separated)
              <input required placeholder="ops@example.com, oncall@example.com" value={form.to} onInput={input('to')} />
            </label>
            <label>
              SMTP user (optional)
              <input autocomplete="off" value={form.username} onInput={input('username')} />
            </label>
          </>
        ) : null}
        {kind === 'telegram' || kind === 'ntfy' || kind === 'email' ? (
          <label>
            {kind === 'telegram' ? 'Bot token' : kind === 'ntfy' ? 'Access token (optional)' : 'SMTP password (optional)'}
            <input
              type="password"
              autocomplete="off"
              required={kind === 'telegram'}
              value={form.secret}
              onInput={input('secret')}
            />
          </label>
        ) : null}
        <label class="inline">
          <input
            type="checkbox"
            checked={form.criticalOnly}
            onChange={(e) => set({ criticalOnly: e.currentTarget.checked })}
          />{' '}
          Critical only
        </label>
        <label>
          Only servers tagged (any of; empty: all)
          <input placeholder="prod, db" value={form.tags} onInput={input('tags')} />
        </label>
        <label>
          Repeat a firing critical every (minutes; empty: never)
          <input inputMode="numeric" value={form.repeatMinutes} onInput={input('repeatMinutes')} />
        </label>
        <button type="submit">Add channel</button>
      </form>
      <ErrorText error={formError} />
    </section>
  );
}
