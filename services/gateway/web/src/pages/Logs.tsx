// Log entries of every server the user may see: filters for server, level, text and time.

import { useState } from 'preact/hooks';
import { LogList } from '../components/LogList';
import { ServerSelect, useServerNames } from '../components/ServerSelect';
import { fromLocalInput, toLocalInput } from '../lib/format';
import { setQuery, useRoute } from '../router';

const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

export function LogsPage() {
  const route = useRoute();
  const q = route.query;
  const serverId = q.get('serverId') ?? '';
  const levels = (q.get('level') ?? '').split(',').filter(Boolean);
  const text = q.get('q') ?? '';
  const from = q.get('from') ?? '';
  const to = q.get('to') ?? '';
  const [draft, setDraft] = useState(text);
  const names = useServerNames();

  const toggle = (level: string, on: boolean) => {
    const next = on ? [...levels, level] : levels.filter((l) => l !== level);
    setQuery({ level: next.join(',') });
  };

  return (
    <section class="page" aria-labelledby="logs-page-title">
      <div class="page-head">
        <h1 id="logs-page-title">Logs</h1>
      </div>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ q: draft.trim() });
        }}
      >
        <ServerSelect value={serverId} onChange={(id) => setQuery({ serverId: id })} />
        <fieldset class="levels">
          <legend>Level</legend>
          {LEVELS.map((l) => (
            <label class="check" key={l}>
              <input type="checkbox" checked={levels.includes(l)} onChange={(e) => toggle(l, e.currentTarget.checked)} />
              {l}
            </label>
          ))}
        </fieldset>
        <label>
          Text
          <input type="search" value={draft} placeholder="words in the message" onInput={(e) => setDraft(e.currentTarget.value)} />
        </label>
        <label>
          From
          <input
            type="datetime-local"
            value={from ? toLocalInput(new Date(from)) : ''}
            onChange={(e) => setQuery({ from: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
        <label>
          To
          <input
            type="datetime-local"
            value={to ? toLocalInput(new Date(to)) : ''}
            onChange={(e) => setQuery({ to: fromLocalInput(e.currentTarget.value) })}
          />
        </label>
        <button type="submit">Search</button>
      </form>
      <LogList
        query={{ serverId: serverId || null, level: levels.length ? levels : null, q: text || null, from: from || null, to: to || null }}
        showServer
        names={names}
      />
    </section>
  );
}
