// Alert transitions seen live in the last minute. The persister stores them within seconds, so a
// list fetched from the API just after an alert fired may not hold it yet: lists re-apply these
// after every fetch, so an alert never vanishes because a filter was changed at the wrong moment.

import { applyEvent } from '../lib/alerts';
import { live } from '../live';
import type { Alert, AlertEvent } from '../types';

const KEEP_MS = 60_000;
const recent: { seen: number; event: AlertEvent }[] = [];

live.onAlert((event) => {
  const now = Date.now();
  recent.push({ seen: now, event });
  while (recent.length > 0 && (now - recent[0]!.seen > KEEP_MS || recent.length > 500)) recent.shift();
});

/** The events of the last minute, oldest first. */
export function recentEvents(): AlertEvent[] {
  const now = Date.now();
  return recent.filter((r) => now - r.seen <= KEEP_MS).map((r) => r.event);
}

/**
 * A fetched list with the recent events it cannot know yet: alerts it lacks, and resolutions of
 * alerts it still shows firing. `keep` says which alerts belong in the list (its filters).
 */
export function withRecent(list: Alert[], keep: (a: Alert) => boolean): Alert[] {
  let out = list;
  for (const e of recentEvents()) {
    const known = out.find((a) => a.id === e.alertId);
    if (known && !(e.state === 'resolved' && known.state === 'firing')) continue;
    const merged = applyEvent(out, e);
    out = merged.filter((a) => a.id !== e.alertId || keep(a));
  }
  return out;
}
