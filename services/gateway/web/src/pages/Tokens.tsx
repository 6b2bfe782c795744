// API tokens: long-lived credentials for Prometheus, scripts and CI. The list shows what each is
// for, its scopes and its last use; a new token is shown once (the gateway keeps only its hash),
// with a Prometheus scrape_config when it may scrape. Revoking one refuses it at once.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { CopyBox, Empty, ErrorText, Loading } from '../components/common';
import { TokenTable } from '../components/TokenTable';
import {
  EXPIRY_CHOICES,
  type ExpiryChoice,
  SCOPES,
  expiryFor,
  localDate,
  orderedScopes,
  scrapeConfig,
} from '../lib/tokens';
import type { ApiToken, CreatedApiToken, TokenScope } from '../types';

function Created({ token, onDone }: { token: CreatedApiToken; onDone: () => void }) {
  const head = useRef<HTMLHeadingElement>(null);
  useEffect(() => head.current?.focus(), [token.id]);
  return (
    <section class="panel token-created" aria-labelledby="token-created-title" data-created={token.name}>
      <div class="panel-head">
        <h2 id="token-created-title" ref={head} tabIndex={-1}>
          Your new token “{token.name}”
        </h2>
        <button type="button" class="small secondary" onClick={onDone}>
          Done
        </button>
      </div>
      <p class="warning" role="alert">
        Copy it now: it is not shown again (FLick keeps only its hash). Send it as{' '}
        <code>Authorization: Bearer &lt;token&gt;</code>.
      </p>
      <CopyBox label="Token" text={token.token} mark={{ secret: 'token' }} />
      {token.scopes.includes('metrics:scrape') ? (
        <>
          <CopyBox
            label="Prometheus scrape_config"
            text={scrapeConfig(token.token, window.location)}
            mark={{ secret: 'scrape-config' }}
          />
          <p class="muted small">
            Add it to <code>prometheus.yml</code> (or keep the token in a file and name it with{' '}
            <code>credentials_file</code>); the gateway answers with the newest sample of each of your servers and the
            alerts firing.
          </p>
        </>
      ) : null}
    </section>
  );
}

function NewToken({ onCreated }: { onCreated: (token: CreatedApiToken) => void }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Set<TokenScope>>(() => new Set());
  const [expiry, setExpiry] = useState<ExpiryChoice>('90d');
  const [date, setDate] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const toggle = (scope: TokenScope, on: boolean) =>
    setScopes((old) => {
      const next = new Set(old);
      if (on) next.add(scope);
      else next.delete(scope);
      return next;
    });

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    if (scopes.size === 0) {
      setError('Choose at least one scope.');
      return;
    }
    const until = expiryFor(expiry, date);
    if ('error' in until) {
      setError(until.error);
      return;
    }
    setBusy(true);
    try {
      const created = await api.createToken({ name: name.trim(), scopes: orderedScopes(scopes), expiresAt: until.expiresAt });
      setName('');
      setScopes(new Set());
      onCreated(created);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="new-token-title">
      <h2 id="new-token-title">New token</h2>
      <form class="token-form" aria-label="New API token" onSubmit={(e) => void submit(e)}>
        <label>
          Name <span class="muted">(what it is for, such as “prometheus” or “backup script”)</span>
          <input name="name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <fieldset class="token-scope-choices">
          <legend>Scopes</legend>
          {SCOPES.map(({ scope, help }) => (
            <label key={scope} class="check">
              <input
                type="checkbox"
                name="scopes"
                value={scope}
                checked={scopes.has(scope)}
                onChange={(e) => toggle(scope, e.currentTarget.checked)}
              />
              <code>{scope}</code>
              <span class="muted">{help}</span>
            </label>
          ))}
        </fieldset>
        <div class="token-expiry">
          <label>
            Expires
            <select name="expiry" value={expiry} onChange={(e) => setExpiry(e.currentTarget.value as ExpiryChoice)}>
              {EXPIRY_CHOICES.map((c) => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </select>
          </label>
          {expiry === 'custom' ? (
            <label>
              Last day it works
              <input
                type="date"
                name="expiry-date"
                required
                min={localDate()}
                value={date}
                onInput={(e) => setDate(e.currentTarget.value)}
              />
            </label>
          ) : null}
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </form>
      <ErrorText error={error} />
    </section>
  );
}

export function TokensPage() {
  const [tokens, setTokens] = useState<ApiToken[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [created, setCreated] = useState<CreatedApiToken | null>(null);

  useEffect(() => {
    api
      .tokens()
      .then((t) => {
        setTokens(t);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [reload]);

  const revoked = (id: string) => {
    setTokens((list) => (list ?? []).filter((t) => t.id !== id));
    if (created?.id === id) setCreated(null);
  };

  return (
    <section class="page" aria-labelledby="tokens-title">
      <div class="page-head">
        <h1 id="tokens-title">API tokens</h1>
      </div>
      <p class="muted">
        For Prometheus, scripts and CI. A token acts with your role and sees only what your account sees; it cannot manage
        tokens or sign in. Revoking one refuses it from the next request on.
      </p>
      {created ? <Created token={created} onDone={() => setCreated(null)} /> : null}
      <ErrorText error={error} retry={() => setReload((n) => n + 1)} />
      {tokens === null && !error ? <Loading what="Loading tokens" /> : null}
      {tokens !== null && tokens.length === 0 ? <Empty>No API token: create one below.</Empty> : null}
      {tokens && tokens.length > 0 ? (
        <TokenTable tokens={tokens} onRevoked={revoked} />
      ) : null}
      <NewToken
        onCreated={(t) => {
          setCreated(t);
          setReload((n) => n + 1);
        }}
      />
    </section>
  );
}
