// One redraw per animation frame for everything that changed, timed: every page's update work
// runs inside `flick:update` marks, and the durations are kept for the benchmark (window.flickPerf).

type Task = () => void;

const tasks = new Map<object, Task>();
const names = new WeakMap<object, string>();
let queued = false;

export interface PerfLog {
  /** Milliseconds of each update (the redraw of what changed in one frame). */
  updates: number[];
  /** Milliseconds from the start of an update to the next task: the update plus the browser's
   * style, layout and paint of that frame. */
  rendered: number[];
  /** Milliseconds spent handling each live frame (the newest 20,000). */
  frames: number[];
  /** Live frames handled, and the milliseconds they took, since the last reset. */
  frameCount: number;
  frameMs: number;
  label: string;
  /** The slowest run of each named task (`chart:cores`, `fleet`), in milliseconds. */
  slowest: Record<string, number>;
}

const perf: PerfLog = { updates: [], rendered: [], frames: [], frameCount: 0, frameMs: 0, label: '', slowest: {} };
const afterPaint = new MessageChannel();
let paintStarted: number | null = null;
afterPaint.port1.onmessage = () => {
  if (paintStarted !== null) keep(perf.rendered, performance.now() - paintStarted);
  paintStarted = null;
};
(window as unknown as { flickPerf: PerfLog }).flickPerf = perf;

const KEEP = 20_000;

function keep(list: number[], value: number): void {
  list.push(value);
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
}

/** Runs `task` in the next frame; one task per owner (a later one replaces it). */
export function schedule(owner: object, task: Task, name?: string): void {
  tasks.set(owner, task);
  if (name) names.set(owner, name);
  if (queued) return;
  queued = true;
  requestAnimationFrame(run);
}

function run(): void {
  queued = false;
  if (tasks.size === 0) return;
  const started = performance.now();
  const batch = [...tasks.entries()];
  tasks.clear();
  for (const [owner, task] of batch) {
    const t0 = performance.now();
    try {
      task();
    } catch (err) {
      console.error(err);
    }
    const name = names.get(owner);
    if (name) perf.slowest[name] = Math.max(perf.slowest[name] ?? 0, performance.now() - t0);
  }
  const took = performance.now() - started;
  keep(perf.updates, took);
  // The message is handled in the first task after this frame has been rendered.
  paintStarted = started;
  afterPaint.port2.postMessage(null);
  performance.measure('flick:update', { start: started, duration: took });
}

/** Times the handling of one live frame (parsing is timed by the caller). */
export function timed<T>(work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    const took = performance.now() - started;
    keep(perf.frames, took);
    perf.frameCount += 1;
    perf.frameMs += took;
  }
}

export function setPerfLabel(label: string): void {
  perf.label = label;
}
