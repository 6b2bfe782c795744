// Client-side routes on the history API (`/servers/:id`); the gateway answers every such path
// with index.html.

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  name: 'fleet' | 'server' | 'alerts' | 'silences' | 'logs' | 'tokens' | 'admin' | 'login' | 'register' | 'missing';
  params: Record<string, string>;
  path: string;
  query: URLSearchParams;
}

const PATTERNS: [Route['name'], RegExp][] = [
  ['fleet', /^\/$/],
  ['server', /^\/servers\/([^/]+)$/],
  ['alerts', /^\/alerts$/],
  ['silences', /^\/silences$/],
  ['logs', /^\/logs$/],
  ['tokens', /^\/tokens$/],
  ['admin', /^\/admin$/],
  ['login', /^\/login$/],
  ['register', /^\/register$/],
];

export function match(pathname: string, search = ''): Route {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, '') : pathname;
  const query = new URLSearchParams(search);
  for (const [name, re] of PATTERNS) {
    const m = re.exec(path);
    if (m) {
      const params: Record<string, string> = {};
      if (m[1] !== undefined) {
        try {
          params['id'] = decodeURIComponent(m[1]);
        } catch {
          params['id'] = m[1];
        }
      }
      return { name, params, path, query };
    }
  }
  return { name: 'missing', params: {}, path, query };
}

const listeners = new Set<() => void>();

export function current(): Route {
  return match(location.pathname, location.search);
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
}

/** Updates query parameters of the current page without a history entry. */
export function setQuery(changes: Record<string, string | null | undefined>): void {
  const query = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') query.delete(k);
    else query.set(k, v);
  }
  const text = query.toString();
  navigate(`${location.pathname}${text ? `?${text}` : ''}`, { replace: true });
}

window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return route;
}

/** Follows same-origin links without reloading the page (modified clicks open tabs as usual). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = (event.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
    window.scrollTo(0, 0);
  });
}
