// "Add server": an enrolment token and the one command that installs, enrols and starts the
// collector on a host; then the host itself, the moment it enrols and the moment it reports.
//
// The token and the command are shown once (the gateway keeps only the token's hash). The host is
// recognised as the first enrolled server that was not in the list when the token was made; the
// list is re-read every two seconds while the panel is open, which is cheap (one request) and needs
// nothing from the WebSocket.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { isLoopbackHost, loopbackUrls } from '../lib/enroll';
import { formatAgo } from '../lib/format';
import type { CreatedEnrollment, Server } from '../types';
import { CopyBox, ErrorText } from './common';

const POLL_MS = 2_000;

const LIFETIMES: { secs: number; label: string }[] = [
  { secs: 3_600, label: '1 hour' },
  { secs: 86_400, label: '24 hours' },
  { secs: 604_800, label: '7 days' },
];

type Joined = { server: Server; reporting: boolean };

export function AddServer({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [tags, setTags] = useState('');
  const [lifetime, setLifetime] = useState(3_600);
  const [uses, setUses] = useState(1);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedEnrollment | null>(null);
  const [joined, setJoined] = useState<Joined[]>([]);
  const known = useRef<Set<string>>(new Set());

  // While a token waits: find the servers enrolled since, and whether each one reports yet.
  useEffect(() => {
    if (!created) return;
    let stopped = false;
    const look = async () => {
      try {
        const servers = await api.servers();
        if (stopped) return;
        const fresh = servers
          .filter((s) => !known.current.has(s.id) && s.origin === 'enrolled')
          .map((s) => ({ server: s, reporting: s.status === 'online' || !!s.lastSeenAt }));
        // (The fleet table below hears of the host from its own subscription.)
        setJoined(fresh);
      } catch (err) {
        if (!stopped) setError(errorText(err));
      }
    };
    const timer = setInterval(() => void look(), POLL_MS);
    void look();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [created]);

  const create = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const before = await api.servers();
      known.current = new Set(before.map((s) => s.id));
      const tagList = tags
        .split(/[\s,]+/)
        .map((t) => t.trim())
        .filter(Boolean);
      setCreated(
        await api.createEnrollment({
          name: name.trim() || undefined,
          tags: tagList,
          expiresInSecs: lifetime,
          uses,
        }),
      );
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async () => {
    if (!created) return;
    try {
      await api.deleteEnrollment(created.id);
      setCreated(null);
      setJoined([]);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section class="panel add-server" aria-labelledby="add-server-title">
      <div class="panel-head">
        <h2 id="add-server-title">Add a server</h2>
        <button type="button" class="small secondary" onClick={onClose}>
          Close
        </button>
      </div>
      {!created ? (
        <form onSubmit={create} class="add-server-form">
          <p class="muted">
            Creates a one-time token and the command that installs the collector on a Linux host (systemd), enrols it with
            its own identity and starts it. The host's key is made on the host and never leaves it.
          </p>
          <label>
            Name <span class="muted">(optional: the host's name by default)</span>
            <input name="name" value={name} maxLength={255} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <label>
            Tags <span class="muted">(optional, separated by commas)</span>
            <input name="tags" value={tags} placeholder="prod, db" onInput={(e) => setTags(e.currentTarget.value)} />
          </label>
          <label>
            Valid for
            <select value={String(lifetime)} onChange={(e) => setLifetime(Number(e.currentTarget.value))}>
              {LIFETIMES.map((l) => (
                <option value={String(l.secs)}>{l.label}</option>
              ))}
            </select>
          </label>
          <label>
            Hosts it may enrol
            <input
              name="uses"
              type="number"
              min={1}
              max={1000}
              value={uses}
              onInput={(e) => setUses(Math.max(1, Math.min(1000, Number(e.currentTarget.value) || 1)))}
            />
          </label>
          <button type="submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create the install command'}
          </button>
        </form>
      ) : (
        <div class="add-server-created">
          <p>
            Run this as root on the host. The token works {created.usesLeft === 1 ? 'once' : `${created.usesLeft} times`}{' '}
            until {new Date(created.expiresAt).toLocaleString()}; it is shown only now.
          </p>
          {loopbackUrls(created.natsUrls).length > 0 && !isLoopbackHost(window.location.hostname) ? (
            <p class="warning" role="alert" data-loopback-warning>
              Hosts will connect to NATS at {loopbackUrls(created.natsUrls).join(', ')}, which only this hub's own machine
              can reach. Set <code>FLICK_DOMAIN</code> (compose) or <code>enrollment.nats_urls</code> to the name other
              hosts reach the hub by, restart, and create a new token.
            </p>
          ) : null}
          <CopyBox label="Install and start (Linux, systemd)" text={created.command} mark={{ command: 'install' }} />
          <details>
            <summary>The collector is already installed</summary>
            <CopyBox label="Enrol only" text={created.enrollCommand} mark={{ command: 'enroll' }} />
            <p class="muted small">
              Then run <code>flick-collector --state-dir /var/lib/flick-collector</code>.
              {created.caSha256 ? ` The host checks that the hub's CA is ${created.caSha256}.` : ''}
            </p>
          </details>
          <div class="enroll-status" role="status" aria-live="polite" data-enroll-status>
            {joined.length === 0 ? (
              <p>
                <span class="spinner" aria-hidden="true" /> Waiting for the host to enrol…
              </p>
            ) : (
              joined.map((j) => (
                <p data-joined={j.server.id} data-reporting={j.reporting ? 'yes' : 'no'}>
                  {j.reporting ? (
                    <>
                      <a href={`/servers/${encodeURIComponent(j.server.id)}`}>{j.server.name}</a> is reporting
                      {j.server.lastSeenAt ? ` (last sample ${formatAgo(j.server.lastSeenAt)})` : ''}.
                    </>
                  ) : (
                    <>
                      <span class="spinner" aria-hidden="true" /> {j.server.name} enrolled; waiting for its first sample…
                    </>
                  )}
                </p>
              ))
            )}
          </div>
          <div class="actions">
            <button type="button" class="small danger" onClick={() => void revoke()}>
              Revoke this token
            </button>
            <button
              type="button"
              class="small secondary"
              onClick={() => {
                setCreated(null);
                setJoined([]);
              }}
            >
              Another token
            </button>
          </div>
        </div>
      )}
      <ErrorText error={error} />
    </section>
  );
}
