// On a server's page: the silences covering it now and a "silence for 2 h" of the whole server.

import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { formatDateTime } from '../lib/format';
import { silenceScope } from '../pages/Silences';
import type { Server, Silence } from '../types';
import { SilenceButton } from './SilenceButton';
import { useServerNames } from './ServerSelect';

/** Whether `s` covers `server` (the gateway and alerter apply the owner's scope as well). */
export function covers(s: Silence, server: Pick<Server, 'id' | 'tags'>): boolean {
  return (s.serverId == null || s.serverId === server.id) && s.tags.every((t) => server.tags.includes(t));
}

export function ServerSilences({ server }: { server: Server }) {
  const names = useServerNames();
  const [silences, setSilences] = useState<Silence[]>([]);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    api
      .silences()
      .then((all) => setSilences(all.filter((s) => s.status !== 'expired' && covers(s, server))))
      .catch(() => setSilences([]));
  }, [server.id, reload]);

  return (
    <div class="server-silences" aria-label="Silences">
      {silences.map((s) => (
        <p key={s.id} class="notice" data-silence={s.id}>
          {s.status === 'active' ? 'Silenced' : 'Silence planned'}: {silenceScope(s, names)}, until{' '}
          {formatDateTime(s.endsAt)}
          {s.comment ? ` (${s.comment})` : ''}. <a href="/silences">Silences</a>
        </p>
      ))}
      <SilenceButton key={reload} serverId={server.id} onCreated={() => setTimeout(() => setReload((n) => n + 1), 50)} />
    </div>
  );
}
