import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface Secrets {
  jwtSecret: string;
  serverKey: string;
}

/**
 * The JWT secret and the key-vault key: from the environment when given, else generated once and
 * kept (mode 0600) in DATA_DIR/secrets.json so that tokens and sealed agent keys survive restarts.
 */
export function loadSecrets(dataDir: string, env: { jwtSecret: string | null; serverKey: string | null }): Secrets {
  if (env.jwtSecret && env.serverKey) return { jwtSecret: env.jwtSecret, serverKey: env.serverKey };
  const file = join(dataDir, 'secrets.json');
  let stored: Partial<Secrets> = {};
  if (existsSync(file)) stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<Secrets>;
  const out: Secrets = {
    jwtSecret: env.jwtSecret ?? stored.jwtSecret ?? randomBytes(48).toString('base64url'),
    serverKey: env.serverKey ?? stored.serverKey ?? randomBytes(48).toString('base64url'),
  };
  if (out.jwtSecret !== stored.jwtSecret || out.serverKey !== stored.serverKey) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify({ jwtSecret: stored.jwtSecret ?? out.jwtSecret, serverKey: stored.serverKey ?? out.serverKey }), { mode: 0o600 });
  }
  return out;
}
