// Small pieces every page uses: loading and empty states, errors in words, status badges.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from '../api';
import type { ServerStatus, Severity } from '../types';

/** What `read` answers, read again `everyMs` after each answer (not on a fixed beat, so a slow
 * gateway is not asked again before it answered), until `key` changes or the page leaves. */
export function usePolled<T>(
  key: string,
  everyMs: number,
  read: (signal: AbortSignal) => Promise<T>,
): { value: T | null; error: string | null } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const once = () => {
      read(controller.signal)
        .then((v) => {
          setValue(v);
          setError(null);
        })
        .catch((err) => {
          if ((err as Error).name !== 'AbortError') setError(errorText(err));
        })
        .finally(() => {
          if (!controller.signal.aborted) timer = setTimeout(once, everyMs);
        });
    };
    once();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [key]);
  return { value, error };
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="state loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="state empty">{children}</p>;
}

export function ErrorText({ error, retry }: { error: string | null | undefined; retry?: () => void }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
      {retry ? (
        <>
          {' '}
          <button type="button" class="link" onClick={retry}>
            Try again
          </button>
        </>
      ) : null}
    </p>
  );
}

export function StatusBadge({ status }: { status: ServerStatus }) {
  const text = status === 'online' ? 'Online' : status === 'offline' ? 'Offline' : 'Unknown';
  return (
    <span class={`badge status-${status}`}>
      <span class="dot" aria-hidden="true" />
      {text}
    </span>
  );
}

export function SeverityBadge({ severity, count }: { severity: Severity | null; count?: number }) {
  if (!severity) return <span class="muted">none</span>;
  return (
    <span class={`badge sev-${severity}`} title={`${count ?? 1} firing; the worst is ${severity}`}>
      {severity}
      {count !== undefined && count > 1 ? ` ×${count}` : ''}
    </span>
  );
}

export function NotFound({ what = 'Page' }: { what?: string }) {
  return (
    <section class="page not-found" aria-labelledby="nf-title">
      <h1 id="nf-title">{what} not found</h1>
      <p>It does not exist, or your account may not see it.</p>
      <p>
        <a href="/">Back to the fleet</a>
      </p>
    </section>
  );
}

/** Copies `text`; where the Clipboard API is unavailable (plain HTTP), selects it for Ctrl+C. */
async function copy(text: string, fallback: HTMLElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallback) {
      const range = document.createRange();
      range.selectNodeContents(fallback);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
    }
    return false;
  }
}

/** Text shown once (a command with a token in it, a token) with a "Copy" button. `mark` names
 * the box for tests: `{ command: 'install' }` becomes `data-command="install"`. */
export function CopyBox({ label, text, mark }: { label: string; text: string; mark: Record<string, string> }) {
  const box = useRef<HTMLPreElement>(null);
  const [copied, setCopied] = useState<'' | 'copied' | 'selected'>('');
  const data = Object.fromEntries(Object.entries(mark).map(([k, v]) => [`data-${k}`, v]));
  return (
    <div class="command">
      <div class="command-head">
        <span>{label}</span>
        <button
          type="button"
          class="small secondary"
          aria-label={`Copy ${label.toLowerCase()}`}
          onClick={async () => setCopied((await copy(text, box.current)) ? 'copied' : 'selected')}
        >
          {copied === 'copied' ? 'Copied' : 'Copy'}
        </button>
      </div>
      <pre ref={box} {...data} tabIndex={0}>
        {text}
      </pre>
      {copied === 'selected' ? (
        <p class="muted small">Selected: press Ctrl+C (this page cannot write to the clipboard over plain HTTP).</p>
      ) : null}
    </div>
  );
}
