import { runTask, type StepOut, type StepTask } from '../engine/core/sim.js';

/**
 * Piscina worker: advances a backtest by n steps with the same pure step function the main thread uses.
 * The candles arrive as a SharedArrayBuffer (read in place, never copied); the state arrives as a copy and
 * the advanced copy goes back.
 */
export default function stepWorker(task: StepTask): StepOut {
  return runTask(task);
}
