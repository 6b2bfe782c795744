import { render } from 'preact';
import { App } from './app';
import { session } from './auth';
import { live } from './live';
import { interceptLinks } from './router';
import { fleet } from './stores/fleet';
import './styles.css';

const root = document.getElementById('app')!;
interceptLinks(document.body);
render(<App />, root);

// Read-only views for the browser tests and the benchmark (and anyone curious in the console).
(window as unknown as { flickDebug: unknown }).flickDebug = {
  live: () => live.status(),
  /** When the access token expires (epoch ms): it changes when the session is renewed. */
  sessionExpiresAt: () => session()?.expiresAt ?? null,
  fleetSize: () => fleet.rows.size,
  /** Servers whose newest sample is at most `secs` old. */
  fleetFresh: (secs = 5) => {
    const now = Date.now() / 1000;
    let n = 0;
    for (const r of fleet.rows.values()) if (r.latest && now - r.latest.t <= secs) n += 1;
    return n;
  },
};
