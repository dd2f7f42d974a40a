import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** API keys, secrets and passwords: generated here, stored only as hashes (and agent keys encrypted). */
export const KEY_PATTERN = /^ak_live_[A-Za-z0-9_-]{64}$/;

export const newApiKey = (): string => 'ak_live_' + randomBytes(48).toString('base64url');
export const newApiSecret = (): string => 'sk_live_' + randomBytes(48).toString('base64url');
export const keyPreview = (key: string): string => key.slice(0, 12) + '...';

/** Keys carry 384 random bits, so a fast hash is a safe lookup index. */
export const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex');

function scryptAsync(secret: string, salt: Buffer, cost: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, 32, { N: cost, r: 8, p: 1, maxmem: 256 * cost * 8 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Slow KDF (scrypt) for secrets and passwords: `scrypt$N$salt$hash`. */
export async function hashSecret(secret: string, cost: number): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, cost);
  return `scrypt$${cost}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [kind, costText, saltText, hashText] = stored.split('$');
  if (kind !== 'scrypt' || !costText || !saltText || !hashText) return false;
  const expected = Buffer.from(hashText, 'base64url');
  // An unusable cost (not a power of two, out of range) is an unreadable hash: no match, not a crash.
  const actual = await scryptAsync(secret, Buffer.from(saltText, 'base64url'), Number(costText)).catch(() => null);
  return actual !== null && actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** AES-256-GCM with a key derived from the server key: `v1.iv.tag.ciphertext`. */
export class KeyVault {
  private readonly key: Buffer;
  constructor(serverKey: string) {
    this.key = createHash('sha256').update('agent-key-vault:' + serverKey).digest();
  }
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }
  open(sealed: string): string {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || !body) throw new Error('unreadable sealed key');
    // A fixed tag length: otherwise a truncated (weaker, down to 4-byte) tag would be accepted.
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
  }
}
