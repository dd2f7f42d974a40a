import t from 'tap';
import {
  hashSecret,
  KEY_PATTERN,
  keyHash,
  keyPreview,
  KeyVault,
  newApiKey,
  newApiSecret,
  verifySecret,
} from '../../../engine/identity/credentials.js';

const COST = 1024;

/** Replaces one base64url character at `i` with a different one, so the decoded bytes change. */
const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);

t.test('API keys and secrets have their documented formats and are unique', async (t) => {
  const keys = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const key = newApiKey();
    t.match(key, KEY_PATTERN);
    keys.add(key);
  }
  t.equal(keys.size, 200, 'no repeated keys');
  const secret = newApiSecret();
  t.match(secret, /^sk_live_[A-Za-z0-9_-]{64}$/);
  t.notMatch(secret, KEY_PATTERN, 'a secret is never mistaken for a key');
  t.not(newApiSecret(), secret);
});

t.test('KEY_PATTERN accepts only ak_live_ plus 64 base64url characters', async (t) => {
  const body = 'a'.repeat(64);
  const cases: Array<[string, boolean]> = [
    ['ak_live_' + body, true],
    ['ak_live_' + '-_Az09'.repeat(10) + 'abcd', true],
    ['ak_live_' + 'a'.repeat(63), false],
    ['ak_live_' + 'a'.repeat(65), false],
    ['sk_live_' + body, false],
    ['ak_test_' + body, false],
    ['ak_live_' + 'a'.repeat(63) + '=', false],
    ['ak_live_' + 'a'.repeat(63) + '+', false],
    [' ak_live_' + body, false],
    ['', false],
  ];
  for (const [key, ok] of cases) t.equal(KEY_PATTERN.test(key), ok, JSON.stringify(key));
});

t.test('keyPreview shows the first 12 characters only', async (t) => {
  const key = newApiKey();
  t.equal(keyPreview(key), key.slice(0, 12) + '...');
  t.equal(keyPreview(key).length, 15);
});

t.test('keyHash is a stable sha256 hex digest, distinct per key', async (t) => {
  const key = newApiKey();
  t.match(keyHash(key), /^[0-9a-f]{64}$/);
  t.equal(keyHash(key), keyHash(key));
  t.equal(keyHash(key), keyHash(String(key)));
  t.not(keyHash(key), keyHash(newApiKey()));
  // Known vector: sha256("abc").
  t.equal(keyHash('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

t.test('hashSecret / verifySecret', async (t) => {
  const secret = newApiSecret();
  const stored = await hashSecret(secret, COST);

  t.test('stored form is scrypt$N$salt$hash and salted', async (t) => {
    t.match(stored, /^scrypt\$1024\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    t.notOk(stored.includes(secret), 'secret not in the stored form');
    t.not(await hashSecret(secret, COST), stored, 'a fresh salt each time');
  });

  t.test('the right secret verifies, a wrong one does not', async (t) => {
    t.equal(await verifySecret(secret, stored), true);
    t.equal(await verifySecret(newApiSecret(), stored), false);
    t.equal(await verifySecret(secret + 'x', stored), false);
    t.equal(await verifySecret(secret.slice(0, -1), stored), false);
    t.equal(await verifySecret('', stored), false);
    const pw = await hashSecret('hunter2hunter2', COST);
    t.equal(await verifySecret('hunter2hunter2', pw), true);
    t.equal(await verifySecret('Hunter2hunter2', pw), false);
  });

  t.test('a tampered or unreadable stored hash never verifies', async (t) => {
    const [kind, cost, salt, hash] = stored.split('$');
    const cases: Array<[label: string, value: string]> = [
      ['hash changed', [kind, cost, salt, flip(hash, 0)].join('$')],
      ['hash truncated', [kind, cost, salt, hash.slice(0, 20)].join('$')],
      ['hash empty', [kind, cost, salt, ''].join('$')],
      ['salt changed', [kind, cost, flip(salt, 0), hash].join('$')],
      ['cost changed to another valid cost', [kind, '2048', salt, hash].join('$')],
      ['cost not a number', [kind, 'abc', salt, hash].join('$')],
      ['cost not a power of two', [kind, '1000', salt, hash].join('$')],
      ['cost negative', [kind, '-1024', salt, hash].join('$')],
      ['cost zero', [kind, '0', salt, hash].join('$')],
      ['other algorithm', ['bcrypt', cost, salt, hash].join('$')],
      ['missing parts', [kind, cost, salt].join('$')],
      ['empty', ''],
      ['plain text secret', secret],
    ];
    for (const [label, value] of cases) {
      t.equal(await verifySecret(secret, value), false, label);
    }
  });
});

t.test('KeyVault', async (t) => {
  const vault = new KeyVault('server-key-one');
  const plain = newApiKey();

  t.test('seal / open round trip', async (t) => {
    const sealed = vault.seal(plain);
    t.match(sealed, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    t.notOk(sealed.includes(plain), 'plain text not visible');
    t.equal(vault.open(sealed), plain);
    t.not(vault.seal(plain), sealed, 'a fresh IV each time');
    t.equal(new KeyVault('server-key-one').open(sealed), plain, 'the same server key opens it in another instance');
    t.equal(vault.open(vault.seal('ключ ✓')), 'ключ ✓', 'non-ASCII');
  });

  t.test('a different server key cannot open', async (t) => {
    const sealed = vault.seal(plain);
    t.throws(() => new KeyVault('server-key-two').open(sealed));
    t.throws(() => new KeyVault('').open(sealed));
  });

  t.test('tampered or malformed sealed values throw', async (t) => {
    const sealed = vault.seal(plain);
    const [v, iv, tag, body] = sealed.split('.');
    const cases: Array<[label: string, value: string]> = [
      ['ciphertext changed', [v, iv, tag, flip(body, 0)].join('.')],
      ['ciphertext changed at the end', [v, iv, tag, flip(body, body.length - 1)].join('.')],
      ['ciphertext truncated', [v, iv, tag, body.slice(0, -4)].join('.')],
      ['ciphertext extended', [v, iv, tag, body + 'AAAA'].join('.')],
      ['tag changed', [v, iv, flip(tag, 0), body].join('.')],
      ['tag truncated to 12 bytes', [v, iv, Buffer.from(tag, 'base64url').subarray(0, 12).toString('base64url'), body].join('.')],
      ['tag truncated to 4 bytes', [v, iv, Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url'), body].join('.')],
      ['iv changed', [v, flip(iv, 0), tag, body].join('.')],
      ['version changed', ['v2', iv, tag, body].join('.')],
      ['part missing', [v, iv, tag].join('.')],
      ['empty', ''],
      ['plain key', plain],
    ];
    for (const [label, value] of cases) t.throws(() => vault.open(value), label);
  });
});
