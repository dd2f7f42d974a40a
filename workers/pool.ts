import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { BACKTEST_TUNING } from '../schemas/backtest.js';
import type { StepOut, StepTask } from '../engine/core/sim.js';
import type { StepRunner } from '../engine/backtests.js';

/**
 * The worker pool for backtest batches. Workers run the compiled step worker in dist/workers; when this
 * module itself runs from TypeScript source (tests), the compiled file is looked up in dist beside it.
 */
export function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? fileURLToPath(new URL('../dist/workers/step.worker.js', import.meta.url)) : fileURLToPath(new URL('./step.worker.js', import.meta.url));
}

export interface PoolOptions {
  /** Worker threads; default one per core but one, at least one. */
  threads?: number;
  queue_max?: number;
  /** Threads started up front (default none: a server that never runs a large batch never pays for one). */
  min_threads?: number;
}

/** A piscina pool, or null when the compiled worker is missing (backtests then step in the main thread). */
export function createStepPool(opts: PoolOptions = {}): StepRunner | null {
  const filename = workerFile();
  if (!existsSync(filename)) return null;
  const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
  const pool = new Piscina<StepTask, StepOut>({
    filename, minThreads: Math.min(opts.min_threads ?? 0, threads), maxThreads: threads, maxQueue: opts.queue_max ?? BACKTEST_TUNING.worker_queue_max, idleTimeout: 30_000,
  });
  return {
    threads,
    run: (task) => pool.run(task),
    close: () => pool.destroy(),
  };
}
