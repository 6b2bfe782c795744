// The shell: header with navigation, the live connection's state and the account; the page of
// the current route; signed-out visitors go to the sign-in page.

import { useEffect, useState } from 'preact/hooks';
import { type StoredSession, onSession, restored, session, signOut } from './auth';
import { NotFound } from './components/common';
import { Connection } from './components/Connection';
import { live } from './live';
import { AdminPage } from './pages/Admin';
import { AlertsPage } from './pages/Alerts';
import { FleetPage } from './pages/Fleet';
import { LoginPage } from './pages/Login';
import { LogsPage } from './pages/Logs';
import { ServerPage } from './pages/Server';
import { SilencesPage } from './pages/Silences';
import { TokensPage } from './pages/Tokens';
import { navigate, useRoute } from './router';
import { fleet } from './stores/fleet';

function useSession(): { s: StoredSession | null; ready: boolean } {
  const [s, setS] = useState(session);
  const [ready, setReady] = useState(false);
  useEffect(() => onSession((next) => setS(next)), []);
  useEffect(() => {
    void restored.then(() => {
      setS(session());
      setReady(true);
    });
  }, []);
  return { s, ready };
}

function useFiring(): number {
  const [n, setN] = useState(() => fleet.firingCount());
  useEffect(() => fleet.subscribe(() => setN(fleet.firingCount())), []);
  return n;
}

function Header({ s, route }: { s: StoredSession; route: string }) {
  const firing = useFiring();
  const link = (href: string, name: string, label: string, extra?: preact.ComponentChildren) => (
    <a href={href} aria-current={route === name ? 'page' : undefined}>
      {label}
      {extra}
    </a>
  );
  return (
    <header class="top">
      <a class="brand" href="/" aria-label="FLick, the fleet">
        FLick
      </a>
      <nav aria-label="Main">
        {link('/', 'fleet', 'Fleet')}
        {link(
          '/alerts',
          'alerts',
          'Alerts',
          firing > 0 ? (
            <span class="count" aria-label={`${firing} firing`}>
              {firing}
            </span>
          ) : null,
        )}
        {link('/silences', 'silences', 'Silences')}
        {link('/logs', 'logs', 'Logs')}
        {link('/tokens', 'tokens', 'API tokens')}
        {s.user.role === 'admin' ? link('/admin', 'admin', 'Admin') : null}
      </nav>
      <Connection />
      <div class="account">
        <details>
          <summary class="who">{s.user.email}</summary>
          <div class="account-menu">
            <p>
              {s.user.role === 'admin' ? 'Administrator' : 'User'}
              <br />
              <span class="muted">Your user id (an admin needs it to give you a server):</span>
              <br />
              <code class="user-id">{s.user.id}</code>
            </p>
          </div>
        </details>
        <button type="button" class="secondary" onClick={() => void signOut().then(() => navigate('/login'))}>
          Sign out
        </button>
      </div>
    </header>
  );
}

export function App() {
  const { s, ready } = useSession();
  const route = useRoute();
  const publicPage = route.name === 'login' || route.name === 'register';

  useEffect(() => {
    if (!ready) return;
    if (!s && !publicPage) {
      const next = route.path === '/' ? '' : `?next=${encodeURIComponent(route.path + (route.query.toString() ? `?${route.query}` : ''))}`;
      navigate(`/login${next}`, { replace: true });
    } else if (s && publicPage) {
      const next = route.query.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    }
  }, [s, ready, publicPage, route.path]);

  // While signed in: the fleet store and the alert stream stay on for the header's count.
  useEffect(() => {
    if (!s) return;
    const stopFleet = fleet.use();
    const stopAlerts = live.watchAlerts();
    void fleet.load();
    return () => {
      stopAlerts();
      stopFleet();
      fleet.reset();
    };
  }, [s?.user.id]);

  useEffect(() => {
    const names: Record<string, string> = {
      fleet: 'Fleet',
      server: 'Server',
      alerts: 'Alerts',
      silences: 'Silences',
      logs: 'Logs',
      tokens: 'API tokens',
      admin: 'Admin',
      login: 'Sign in',
      register: 'Create an account',
      missing: 'Not found',
    };
    document.title = `${names[route.name] ?? 'FLick'} · FLick`;
  }, [route.name]);

  if (!ready) {
    return (
      <main id="main" class="auth-main" aria-busy="true">
        <p class="muted">Signing in…</p>
      </main>
    );
  }

  if (!s || publicPage) {
    return (
      <main id="main" class="auth-main">
        {publicPage ? <LoginPage mode={route.name === 'register' ? 'register' : 'login'} /> : null}
      </main>
    );
  }

  let page;
  switch (route.name) {
    case 'fleet':
      page = <FleetPage />;
      break;
    case 'server':
      page = <ServerPage key={route.params['id']} id={route.params['id']!} />;
      break;
    case 'alerts':
      page = <AlertsPage />;
      break;
    case 'silences':
      page = <SilencesPage />;
      break;
    case 'logs':
      page = <LogsPage />;
      break;
    case 'tokens':
      page = <TokensPage />;
      break;
    case 'admin':
      page = s.user.role === 'admin' ? <AdminPage /> : <NotFound />;
      break;
    default:
      page = <NotFound />;
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to the content
      </a>
      <Header s={s} route={route.name} />
      <main id="main">{page}</main>
    </>
  );
}
