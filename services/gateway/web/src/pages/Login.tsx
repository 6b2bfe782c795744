// Sign in, or create an account (the first account of an installation becomes its administrator).

import { useState } from 'preact/hooks';
import { endReason, register, signIn } from '../auth';
import { errorText } from '../api';
import { ErrorText } from '../components/common';

export function LoginPage({ mode }: { mode: 'login' | 'register' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [remember, setRemember] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const registering = mode === 'register';

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (registering) await register(email.trim(), password, remember);
      else await signIn(email.trim(), password, remember);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="auth-card" aria-labelledby="auth-title">
      <p class="brand big">FLick</p>
      <h1 id="auth-title">{registering ? 'Create an account' : 'Sign in'}</h1>
      {!registering && endReason ? <p class="notice">{endReason}</p> : null}
      {registering ? <p class="muted">The first account of an installation becomes its administrator.</p> : null}
      <form onSubmit={submit}>
        <label>
          Email
          <input
            type="email"
            name="email"
            autocomplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            autocomplete={registering ? 'new-password' : 'current-password'}
            required
            minLength={registering ? 10 : undefined}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} />
          Keep me signed in on this browser
        </label>
        <ErrorText error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Please wait…' : registering ? 'Create account' : 'Sign in'}
        </button>
      </form>
      <p class="switch">
        {registering ? (
          <>
            Have an account? <a href={`/login${location.search}`}>Sign in</a>
          </>
        ) : (
          <>
            New here? <a href={`/register${location.search}`}>Create an account</a>
          </>
        )}
      </p>
    </section>
  );
}
