// The list of API tokens, shared by the Tokens page (your own) and Admin (every user's, with
// an Owner column): name, hint, scopes, dates, last use, and Revoke with a confirmation.

import { useState } from 'preact/hooks';
import { api, errorText } from '../api';
import { ErrorText } from './common';
import { formatDateTime } from '../lib/format';
import { expiryText, isExpired, lastUseText } from '../lib/tokens';
import type { ApiToken } from '../types';

function TokenRow({ token, showOwner, onRevoked }: { token: ApiToken; showOwner: boolean; onRevoked: (id: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.revokeToken(token.id);
      onRevoked(token.id);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  const expired = isExpired(token);
  return (
    <tr data-token-id={token.id} data-token-name={token.name}>
      {showOwner ? <td data-owner={token.ownerEmail}>{token.ownerEmail}</td> : null}
      <td>{token.name}</td>
      <td>
        <code>{token.hint}</code>
      </td>
      <td>
        <span class="token-scopes">
          {token.scopes.map((s) => (
            <span key={s} class="badge">
              {s}
            </span>
          ))}
        </span>
      </td>
      <td class="nowrap">{formatDateTime(token.createdAt)}</td>
      <td class={expired ? 'nowrap error-text' : 'nowrap'}>{expiryText(token)}</td>
      <td>{lastUseText(token)}</td>
      <td>
        {confirming ? (
          <span class="confirm" role="group" aria-label={`Revoke ${token.name}?`}>
            <span class="small">
              {showOwner ? `${token.ownerEmail}'s scripts using it stop at once.` : 'Scripts using it stop at once.'}
            </span>
            <button type="button" class="small danger" disabled={busy} onClick={() => void revoke()}>
              Revoke now
            </button>
            <button type="button" class="small secondary" disabled={busy} onClick={() => setConfirming(false)}>
              Keep
            </button>
          </span>
        ) : (
          <button type="button" class="small danger" onClick={() => setConfirming(true)}>
            Revoke
          </button>
        )}
        <ErrorText error={error} />
      </td>
    </tr>
  );
}

export function TokenTable({
  tokens,
  showOwner = false,
  onRevoked,
}: {
  tokens: ApiToken[];
  showOwner?: boolean;
  onRevoked: (id: string) => void;
}) {
  return (
    <div class="table-wrap">
      <table class="list tokens">
        <thead>
          <tr>
            {showOwner ? <th scope="col">Owner</th> : null}
            <th scope="col">Name</th>
            <th scope="col">Token</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <TokenRow key={t.id} token={t} showOwner={showOwner} onRevoked={onRevoked} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
