// `npm start` builds first when dist/ is missing or older than any source file.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const entry = 'dist/gateway/main.js';
const newest = (dir) => {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return t;
};
const sources = Math.max(...['engine', 'gateway', 'workers', 'schemas'].filter(existsSync).map(newest));
if (!existsSync(entry) || statSync(entry).mtimeMs < sources) {
  execSync('npx tsc -p tsconfig.json', { stdio: 'inherit' });
}
