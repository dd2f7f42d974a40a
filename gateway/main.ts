import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/log.js';
import { createEngine } from '../engine/system.js';
import { startServer } from './server.js';

/** Process entry: `npm start`. Serves until SIGTERM/SIGINT, then shuts down gracefully and exits 0. */
async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const engine = await createEngine(config, log);
  const server = await startServer(engine, { port: config.port, host: config.host });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutdown.begin', { signal });
    try {
      await server.close();
      await engine.close();
      log.info('shutdown.done', {});
      process.exit(0);
    } catch (err) {
      log.error('shutdown.failed', { err: err as Error });
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', event: 'startup.failed', err: { message: err.message, stack: err.stack } }) + '\n');
  process.exit(1);
});
