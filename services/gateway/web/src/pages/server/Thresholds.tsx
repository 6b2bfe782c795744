// The alert rules in force for a server (defaults or its own), editable; an edited rule can be
// tried on the last hour of stored samples before it is saved.

import { useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { ErrorText } from '../../components/common';
import { METRIC_NAMES } from '../../lib/alerts';
import { formatDateTime } from '../../lib/format';
import { describePreviewAlert, lastHour, previewSummary } from '../../lib/preview';
import { PreviewCharts } from './PreviewCharts';
import type { Preview, Rule, RuleChange, RuleMetric, Thresholds } from '../../types';

const METRICS: RuleMetric[] = ['cpu', 'memory', 'disk', 'temperature', 'offline'];
/** The metrics previewed here (offline depends on silence, which samples do not show;
 * temperature has no headline history to chart it on, though the API replays it). */
const SAMPLED = ['cpu', 'memory', 'disk'] as const;

interface Draft {
  warning: string;
  critical: string;
  forSecs: string;
  margin: string;
  enabled: boolean;
}

function draftOf(rule: Rule | undefined): Draft {
  return {
    warning: rule?.warning != null ? String(rule.warning) : '',
    critical: rule?.critical != null ? String(rule.critical) : '',
    forSecs: rule ? String(rule.forSecs) : '',
    margin: rule ? String(rule.margin) : '',
    enabled: rule?.enabled ?? true,
  };
}

function num(text: string): number | null {
  if (text.trim() === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** The change for one metric, or a message when a field is not a number. */
export function changeOf(metric: RuleMetric, d: Draft): RuleChange | string {
  const warning = num(d.warning);
  const critical = num(d.critical);
  const forSecs = num(d.forSecs);
  const margin = num(d.margin);
  for (const [name, v] of [
    ['warning', warning],
    ['critical', critical],
    ['for', forSecs],
    ['margin', margin],
  ] as const) {
    if (Number.isNaN(v)) return `${METRIC_NAMES[metric]}: ${name} is not a number.`;
  }
  const change: RuleChange = { enabled: d.enabled };
  if (metric !== 'offline') change.warning = warning;
  if (critical !== null) change.critical = critical;
  if (forSecs !== null) change.forSecs = Math.round(forSecs);
  if (margin !== null && metric !== 'offline') change.margin = margin;
  return change;
}

export function ThresholdsPanel({
  serverId,
  thresholds,
  onSaved,
}: {
  serverId: string;
  thresholds: Thresholds;
  onSaved: (t: Thresholds) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [drafts, setDrafts] = useState<Record<RuleMetric, Draft>>(() => draftsOf(thresholds));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [previews, setPreviews] = useState<Preview[] | null>(null);

  function draftsOf(t: Thresholds): Record<RuleMetric, Draft> {
    return Object.fromEntries(METRICS.map((m) => [m, draftOf(t.rules[m])])) as Record<RuleMetric, Draft>;
  }

  const put = async (changes: Partial<Record<RuleMetric, RuleChange | null>>) => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      const next = await api.setThresholds(serverId, changes);
      onSaved(next);
      setDrafts(draftsOf(next));
      setEditing(false);
      setSaved(true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  /** Replays each sampled metric's edited rule over the last hour, one request at a time. */
  const preview = async () => {
    setBusy(true);
    setError(null);
    setPreviews(null);
    try {
      const range = lastHour(Date.now());
      const results: Preview[] = [];
      for (const m of SAMPLED) {
        const change = changeOf(m, drafts[m]);
        if (typeof change === 'string') {
          setError(change);
          return;
        }
        results.push(await api.previewThresholds(serverId, { metric: m, rule: change, ...range }));
      }
      setPreviews(results);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const save = (event: Event) => {
    event.preventDefault();
    const changes: Partial<Record<RuleMetric, RuleChange>> = {};
    for (const m of METRICS) {
      const before = draftOf(thresholds.rules[m]);
      const d = drafts[m];
      if (JSON.stringify(before) === JSON.stringify(d)) continue;
      const change = changeOf(m, d);
      if (typeof change === 'string') {
        setError(change);
        return;
      }
      changes[m] = change;
    }
    if (Object.keys(changes).length === 0) {
      setEditing(false);
      return;
    }
    void put(changes);
  };

  const field = (m: RuleMetric, key: keyof Omit<Draft, 'enabled'>, label: string, unit: string, disabled = false) => (
    <label class="field">
      <span class="sr-only">
        {METRIC_NAMES[m]} {label}
      </span>
      <input
        type="number"
        inputMode="decimal"
        step="any"
        min="0"
        disabled={!editing || disabled}
        value={drafts[m][key]}
        aria-label={`${METRIC_NAMES[m]} ${label} (${unit})`}
        onInput={(e) => setDrafts({ ...drafts, [m]: { ...drafts[m], [key]: e.currentTarget.value } })}
      />
      <span class="unit">{unit}</span>
    </label>
  );

  return (
    <form class="thresholds" onSubmit={save}>
      <div class="table-wrap">
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Warning</th>
              <th scope="col">Critical</th>
              <th scope="col">For</th>
              <th scope="col">Margin</th>
              <th scope="col">On</th>
              <th scope="col">Source</th>
            </tr>
          </thead>
          <tbody>
            {METRICS.map((m) => {
              const rule = thresholds.rules[m];
              const offline = m === 'offline';
              const unit = m === 'temperature' ? '°C' : '%';
              return (
                <tr key={m} data-rule={m}>
                  <th scope="row">{METRIC_NAMES[m]}</th>
                  <td>{offline ? <span class="muted">–</span> : field(m, 'warning', 'warning', unit)}</td>
                  <td>{offline ? <span class="muted">after silence</span> : field(m, 'critical', 'critical', unit)}</td>
                  <td>{field(m, 'forSecs', offline ? 'silence' : 'for', 's')}</td>
                  <td>{offline ? <span class="muted">–</span> : field(m, 'margin', 'margin', m === 'temperature' ? '°C' : 'points')}</td>
                  <td>
                    <input
                      type="checkbox"
                      disabled={!editing}
                      checked={drafts[m].enabled}
                      aria-label={`${METRIC_NAMES[m]} rule enabled`}
                      onChange={(e) => setDrafts({ ...drafts, [m]: { ...drafts[m], enabled: e.currentTarget.checked } })}
                    />
                  </td>
                  <td>
                    {rule?.source === 'server' ? (
                      <>
                        this server{' '}
                        {editing ? (
                          <button type="button" class="link" disabled={busy} onClick={() => void put({ [m]: null })}>
                            reset
                          </button>
                        ) : null}
                      </>
                    ) : (
                      <span class="muted">default</span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p class="muted">
        {thresholds.defaultsFrom === 'built-in'
          ? 'Defaults: built-in (no alerter has reported the ones it applies yet).'
          : `Defaults: as the alerter applies them${thresholds.defaultsRecordedAt ? ` (reported ${formatDateTime(thresholds.defaultsRecordedAt)})` : ''}.`}
      </p>
      <ErrorText error={error} />
      {previews ? (
        <div class="preview" role="status" aria-label="Preview on the last hour">
          <p>These rules would have fired, over the last hour:</p>
          <ul>
            {previews.map((p) => (
              <li key={p.metric} data-preview={p.metric}>
                <strong>{METRIC_NAMES[p.metric]}</strong>: {previewSummary(p.alerts)}{' '}
                <span class="muted">({p.samples} samples)</span>
                {p.alerts.length > 0 ? (
                  <ul>
                    {p.alerts.map((a) => (
                      <li key={a.alertId} class={`sev-${a.severity}`}>
                        {describePreviewAlert(a)}
                      </li>
                    ))}
                  </ul>
                ) : null}
              </li>
            ))}
          </ul>
          <PreviewCharts serverId={serverId} previews={previews} />
        </div>
      ) : null}
      {saved ? (
        <p class="notice" role="status">
          Saved. The alerter applies the new rules within a few seconds.
        </p>
      ) : null}
      <div class="actions">
        {editing ? (
          <>
            <button type="submit" disabled={busy}>
              {busy ? 'Working…' : 'Save thresholds'}
            </button>
            <button type="button" class="secondary" disabled={busy} onClick={() => void preview()}>
              Preview on the last hour
            </button>
            <button
              type="button"
              class="secondary"
              onClick={() => {
                setDrafts(draftsOf(thresholds));
                setEditing(false);
                setError(null);
                setPreviews(null);
              }}
            >
              Cancel
            </button>
          </>
        ) : (
          <button type="button" class="secondary" onClick={() => setEditing(true)}>
            Edit thresholds
          </button>
        )}
      </div>
    </form>
  );
}
