import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSecrets } from '../../engine/secrets.js';

const NONE = { jwtSecret: null, serverKey: null };

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ae-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('without env values, secrets are generated once, kept with mode 0600 and reused', async (t) => {
  const dir = tempDir(t);
  const first = loadSecrets(dir, NONE);
  t.type(first.jwtSecret, 'string');
  t.type(first.serverKey, 'string');
  t.ok(first.jwtSecret.length >= 32, 'jwt secret is long');
  t.ok(first.serverKey.length >= 32, 'server key is long');
  t.not(first.jwtSecret, first.serverKey, 'two different secrets');

  const file = join(dir, 'secrets.json');
  t.ok(existsSync(file));
  t.equal(statSync(file).mode & 0o777, 0o600, 'file mode 0600');
  t.same(JSON.parse(readFileSync(file, 'utf8')), first);

  const mtime = statSync(file).mtimeMs;
  const second = loadSecrets(dir, NONE);
  t.same(second, first, 'same secrets on a second load');
  t.equal(statSync(file).mtimeMs, mtime, 'file not rewritten when nothing changed');

  const other = loadSecrets(tempDir(t), NONE);
  t.not(other.jwtSecret, first.jwtSecret, 'another data dir gets its own secrets');
});

t.test('a data dir that does not exist yet is created', async (t) => {
  const dir = join(tempDir(t), 'nested', 'data');
  const s = loadSecrets(dir, NONE);
  t.ok(existsSync(join(dir, 'secrets.json')));
  t.same(loadSecrets(dir, NONE), s);
});

t.test('env values win over generated and stored secrets', async (t) => {
  const dir = tempDir(t);
  const stored = loadSecrets(dir, NONE);

  t.same(loadSecrets(dir, { jwtSecret: 'env-jwt', serverKey: 'env-key' }), { jwtSecret: 'env-jwt', serverKey: 'env-key' }, 'both from env');
  t.same(loadSecrets(dir, { jwtSecret: 'env-jwt', serverKey: null }), { jwtSecret: 'env-jwt', serverKey: stored.serverKey }, 'jwt from env, key stored');
  t.same(loadSecrets(dir, { jwtSecret: null, serverKey: 'env-key' }), { jwtSecret: stored.jwtSecret, serverKey: 'env-key' }, 'key from env, jwt stored');

  t.same(loadSecrets(dir, NONE), stored, 'env values do not replace what is stored');
  t.same(JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')), stored);
});

t.test('with both env values set, nothing is written', async (t) => {
  const dir = tempDir(t);
  t.same(loadSecrets(dir, { jwtSecret: 'a', serverKey: 'b' }), { jwtSecret: 'a', serverKey: 'b' });
  t.notOk(existsSync(join(dir, 'secrets.json')));
});
