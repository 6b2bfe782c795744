// A select of the servers the user may see (from the fleet store).

import { useEffect, useState } from 'preact/hooks';
import { fleet } from '../stores/fleet';

export function useServerNames(): Map<string, string> {
  const [version, setVersion] = useState(fleet.listVersion);
  useEffect(() => fleet.subscribe(() => setVersion(fleet.listVersion)), []);
  const names = new Map<string, string>();
  void version;
  for (const [id, row] of fleet.rows) names.set(id, row.server.name);
  return names;
}

export function ServerSelect({ value, onChange, label = 'Server' }: { value: string; onChange: (id: string) => void; label?: string }) {
  const names = useServerNames();
  const sorted = [...names.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">All servers</option>
        {value && !names.has(value) ? <option value={value}>{value}</option> : null}
        {sorted.map(([id, name]) => (
          <option value={id}>{name}</option>
        ))}
      </select>
    </label>
  );
}
