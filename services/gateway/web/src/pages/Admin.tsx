// Administration: give discovered servers to users, register servers, every user's API tokens,
// notification channels.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { session } from '../auth';
import { Channels } from '../components/Channels';
import { Empty, ErrorText, Loading } from '../components/common';
import { TokenTable } from '../components/TokenTable';
import { formatAgo } from '../lib/format';
import { fleet } from '../stores/fleet';
import type { ApiToken, Server } from '../types';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function Assign({ server, owners, onDone }: { server: Server; owners: string[]; onDone: (s: Server) => void }) {
  const [owner, setOwner] = useState(server.ownerId ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: Event, ownerId: string | null) => {
    event.preventDefault();
    if (ownerId !== null && !UUID.test(ownerId.trim())) {
      setError('A user id is a UUID such as 0d1c2b3a-…; the user finds it under their e-mail address at the top right.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onDone(await api.assignOwner(server.id, ownerId === null ? null : ownerId.trim()));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const listId = `owners-${server.id}`;
  return (
    <form class="assign" onSubmit={(e) => void submit(e, owner)}>
      <input
        type="text"
        list={listId}
        placeholder="user id"
        aria-label={`Owner of ${server.name} (user id)`}
        value={owner}
        onInput={(e) => setOwner(e.currentTarget.value)}
        size={38}
      />
      <datalist id={listId}>
        {owners.map((o) => (
          <option value={o} />
        ))}
      </datalist>
      <button type="submit" class="small" disabled={busy}>
        Assign
      </button>
      {server.ownerId ? (
        <button type="button" class="small secondary" disabled={busy} onClick={(e) => void submit(e, null)}>
          Unassign
        </button>
      ) : null}
      <ErrorText error={error} />
    </form>
  );
}

function Servers() {
  const [servers, setServers] = useState<Server[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [onlyDiscovered, setOnlyDiscovered] = useState(true);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    api
      .servers()
      .then((s) => {
        setServers(s);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [reload]);
  const owners = [...new Set((servers ?? []).map((s) => s.ownerId).filter((o): o is string => !!o))];
  const me = session()?.user.id;
  if (me && !owners.includes(me)) owners.unshift(me);
  const shown = (servers ?? []).filter((s) => !onlyDiscovered || !s.ownerId);
  const replace = (s: Server) => {
    setServers((list) => (list ?? []).map((x) => (x.id === s.id ? s : x)));
    void fleet.load();
  };
  return (
    <section class="panel" aria-labelledby="admin-servers">
      <h2 id="admin-servers">Servers and owners</h2>
      <p class="muted">
        A collector that reports for the first time appears here as <em>discovered</em>, visible to admins only. Give it to a
        user by their id (each user sees it under their e-mail address, top right).
      </p>
      <label class="check">
        <input type="checkbox" checked={onlyDiscovered} onChange={(e) => setOnlyDiscovered(e.currentTarget.checked)} />
        Only discovered servers
      </label>
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {servers === null && !error ? <Loading what="Loading servers" /> : null}
      {servers !== null && shown.length === 0 ? (
        <Empty>{onlyDiscovered ? 'No discovered server is waiting for an owner.' : 'No servers.'}</Empty>
      ) : null}
      {shown.length > 0 ? (
        <div class="table-wrap">
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Server</th>
                <th scope="col">Last seen</th>
                <th scope="col">Owner</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => (
                <tr key={s.id} data-server={s.id}>
                  <td>
                    <a href={`/servers/${encodeURIComponent(s.id)}`}>{s.name}</a>
                    <div class="sub">
                      <code>{s.id}</code>
                    </div>
                  </td>
                  <td>{s.lastSeenAt ? formatAgo(s.lastSeenAt) : 'never'}</td>
                  <td>
                    <Assign server={s} owners={owners} onDone={replace} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <NewServer onCreated={() => setReload((n) => n + 1)} />
    </section>
  );
}

function NewServer({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [id, setId] = useState('');
  const [hostname, setHostname] = useState('');
  const [tags, setTags] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<Server | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const body: { name: string; id?: string; hostname?: string; tags?: string[] } = { name: name.trim() };
      if (id.trim()) body.id = id.trim();
      if (hostname.trim()) body.hostname = hostname.trim();
      const t = tags
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (t.length) body.tags = t;
      const s = await api.createServer(body);
      setCreated(s);
      setName('');
      setId('');
      setHostname('');
      setTags('');
      onCreated();
      void fleet.load();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <details class="add">
      <summary>Register a server yourself</summary>
      <form class="filters" onSubmit={(e) => void submit(e)}>
        <label>
          Name
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Id (its collector's <code>FLICK_SERVER_ID</code>; empty: a new UUID)
          <input value={id} pattern="[A-Za-z0-9_\-]{1,64}" onInput={(e) => setId(e.currentTarget.value)} />
        </label>
        <label>
          Host name
          <input value={hostname} onInput={(e) => setHostname(e.currentTarget.value)} />
        </label>
        <label>
          Tags (comma-separated)
          <input value={tags} onInput={(e) => setTags(e.currentTarget.value)} />
        </label>
        <button type="submit">Register</button>
      </form>
      <ErrorText error={error} />
      {created ? (
        <p class="notice" role="status">
          Registered {created.name}: start its collector with <code>FLICK_SERVER_ID={created.id}</code>.
        </p>
      ) : null}
    </details>
  );
}

/** Every user's live API tokens: an administrator stops a leaked one without disabling its owner. */
function Tokens() {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    api
      .tokens(true)
      .then((t) => {
        setTokens(t);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [reload]);
  return (
    <section class="panel" aria-labelledby="admin-tokens" data-admin-tokens>
      <h2 id="admin-tokens">API tokens of every user</h2>
      <p class="muted">
        Each acts as its owner. Revoke one that leaked: it is refused from the next request on, and its owner keeps their
        account and other tokens.
      </p>
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {tokens === null && !error ? <Loading what="Loading tokens" /> : null}
      {tokens !== null && tokens.length === 0 ? <Empty>No user holds an API token.</Empty> : null}
      {tokens && tokens.length > 0 ? (
        <TokenTable
          tokens={tokens}
          showOwner
          onRevoked={(id) => setTokens((list) => (list ?? []).filter((t) => t.id !== id))}
        />
      ) : null}
    </section>
  );
}

export function AdminPage() {
  return (
    <section class="page" aria-labelledby="admin-title">
      <div class="page-head">
        <h1 id="admin-title">Admin</h1>
      </div>
      <Servers />
      <Tokens />
      <Channels />
    </section>
  );
}
