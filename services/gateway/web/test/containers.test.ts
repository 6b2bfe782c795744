import { describe, expect, it } from 'vitest';
import { countText, sortContainers, stateText, stateTone } from '../src/lib/containers';
import type { ContainerUsage } from '../src/types';

const c = (name: string, state: string, extra: Partial<ContainerUsage> = {}): ContainerUsage => ({
  id: 'abc',
  name,
  state,
  restarts: 0,
  cpuPercent: 0,
  memoryBytes: 0,
  netRxBytes: 0,
  netTxBytes: 0,
  blockReadBytes: 0,
  blockWriteBytes: 0,
  ...extra,
});

describe('containers panel', () => {
  it('puts what needs a look first, then sorts by name', () => {
    const list = [
      c('b', 'running'),
      c('a', 'running'),
      c('db', 'exited', { exitCode: 137 }),
      c('api', 'running', { health: 'unhealthy' }),
      c('worker', 'restarting'),
    ];
    expect(sortContainers(list).map((x) => x.name)).toEqual(['api', 'worker', 'db', 'a', 'b']);
  });

  it('names a stopped container with its exit code', () => {
    expect(stateText(c('db', 'exited', { exitCode: 137 }))).toBe('exited 137');
    expect(stateText(c('web', 'running'))).toBe('running');
    expect(stateTone(c('db', 'exited', { exitCode: 137 }))).toBe('critical');
    expect(stateTone(c('job', 'exited', { exitCode: 0 }))).toBe('idle');
    expect(stateTone(c('api', 'running', { health: 'unhealthy' }))).toBe('warning');
    expect(stateTone(c('web', 'running'))).toBe('ok');
  });

  it('counts states in a stable order', () => {
    expect(countText([c('a', 'exited'), c('b', 'running'), c('c', 'running'), c('d', 'paused')])).toBe(
      '2 running, 1 paused, 1 exited',
    );
    expect(countText([])).toBe('');
  });
});
