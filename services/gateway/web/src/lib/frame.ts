// One redraw per animation frame for everything that changed, timed: every page's update work
// runs inside `flick:update` marks, and the durations are kept for the benchmark (window.flickPerf).

type Task = () => void;

const tasks = new Map<object, Task>();
let queued = false;

export interface PerfLog {
  /** Milliseconds of each update (the redraw of what changed in one frame). */
  updates: number[];
  /** Milliseconds spent handling live frames since the last read. */
  frames: number[];
  label: string;
}

const perf: PerfLog = { updates: [], frames: [], label: '' };
(window as unknown as { flickPerf: PerfLog }).flickPerf = perf;

const KEEP = 20_000;

function keep(list: number[], value: number): void {
  list.push(value);
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
}

/** Runs `task` in the next frame; one task per owner (a later one replaces it). */
export function schedule(owner: object, task: Task): void {
  tasks.set(owner, task);
  if (queued) return;
  queued = true;
  requestAnimationFrame(run);
}

function run(): void {
  queued = false;
  if (tasks.size === 0) return;
  const started = performance.now();
  const batch = [...tasks.values()];
  tasks.clear();
  for (const task of batch) {
    try {
      task();
    } catch (err) {
      console.error(err);
    }
  }
  const took = performance.now() - started;
  keep(perf.updates, took);
  performance.measure('flick:update', { start: started, duration: took });
}

/** Times the handling of one live frame (parsing is timed by the caller). */
export function timed<T>(work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    keep(perf.frames, performance.now() - started);
  }
}

export function setPerfLabel(label: string): void {
  perf.label = label;
}
