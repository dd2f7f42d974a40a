import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): top functions by self time, self time by area
 * (PGlite/SQL, JSON, Decimal, XState, validation, uWS, GC, …), and top project functions by inclusive time.
 *
 *   node dist/bench/profile-summary.js server.cpuprofile [--from=<ms>] [--to=<ms>] [--top=15]
 *
 * --from/--to keep only samples in that window, in ms since the profile started (≈ process start).
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SummaryOptions {
  from_ms?: number;
  to_ms?: number;
  top?: number;
}

export interface FunctionCost {
  name: string;
  where: string;
  area: string;
  self_ms: number;
  self_pct: number;
  total_ms: number;
}

export interface ProfileSummary {
  window_ms: number;
  sampled_ms: number;
  busy_pct: number;
  top_self: FunctionCost[];
  areas: Array<{ area: string; self_ms: number; pct: number }>;
  /** Share of busy samples with at least one frame of the area anywhere on the stack. */
  on_stack: Array<{ area: string; ms: number; pct: number }>;
  top_total: FunctionCost[];
}

const ROOT = process.cwd().replace(/\\/g, '/');

/** A short location: project-relative path, package name, or node internal. */
function shortUrl(url: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}/${rest.at(-1)}` : `${rest[0]}/${rest.at(-1)}`;
  }
  const dist = u.lastIndexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  if (u.startsWith(ROOT + '/')) u = u.slice(ROOT.length + 1);
  return u;
}

/** The area a frame's self time is charged to. */
export function areaOf(f: CallFrame): string {
  const { functionName: fn, url } = f;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'native/program (incl. uWS C++, syscalls)';
  if (fn === '(root)') return 'root';
  if (url.startsWith('wasm://') || /\.wasm/.test(url)) return 'PGlite wasm (SQL: journal insert + projections)';
  if (url.includes('@electric-sql/pglite')) return 'PGlite JS glue (protocol encode/parse)';
  if (url.includes('decimal.js')) return 'Decimal (decimal.js)';
  if (url.includes('/xstate/')) return 'XState';
  if (url.includes('@sinclair/typebox')) return 'validation (TypeBox)';
  if (url.includes('uWebSockets.js')) return 'uWS JS glue';
  if (url.includes('/node_modules/')) return `other package: ${shortUrl(url).split('/')[0]}`;
  if (!url) {
    if (/^(parse|stringify)$/.test(fn) || fn.startsWith('JSON')) return 'JSON (builtin parse/stringify)';
    if (/^(send|end|cork|getUserData|publish|subscribe|upgrade)$/.test(fn)) return 'uWS native call';
    return `builtin/native: ${fn || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return 'node internals';
  const s = shortUrl(url);
  if (s.startsWith('dist/')) return `project: ${s.slice(5).replace(/\.js$/, '')}`;
  return s;
}

/** Coarse areas for "anywhere on the stack" accounting ('' = not counted). */
function stackArea(f: CallFrame): string {
  const a = areaOf(f);
  if (a.startsWith('PGlite')) return 'PGlite (wasm SQL + JS glue)';
  if (a === 'GC' || a.startsWith('native/program') || a === 'root' || a === 'idle' || a.startsWith('builtin/native')) return '';
  if (f.url.includes('/engine/store/')) return 'engine/store (journal, projections)';
  if (f.url.includes('/gateway/ws/')) return 'gateway/ws (frame handling, send)';
  if (f.url.includes('/engine/core/')) return 'engine/core (order rules, risk)';
  if (f.url.includes('/engine/machines/') || f.url.includes('/xstate/')) return 'wallet actor (XState + its actions)';
  if (f.url.includes('/gateway/auth') || f.url.includes('/engine/identity/')) return 'auth (per-request key re-resolution)';
  if (f.url.includes('/engine/trading')) return 'engine/trading (actor registry, persist)';
  if (f.url.includes('/gateway/routes/')) return 'gateway/routes (placeFromBody, orderOut)';
  return a.startsWith('project:') || a.startsWith('other package') || a === 'node internals' ? '' : a;
}

const keyOf = (f: CallFrame) => `${f.functionName || '(anonymous)'}\u0000${f.url}\u0000${f.lineNumber}`;

export function summarise(profile: CpuProfile, opts: SummaryOptions = {}): ProfileSummary {
  const top = opts.top ?? 15;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const from = (opts.from_ms ?? 0) * 1000;
  const to = (opts.to_ms ?? Infinity) * 1000;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const frames = new Map<string, CallFrame>();
  const onStack = new Map<string, number>();
  let t = 0;
  let sampled = 0;
  let idle = 0;
  let first = Infinity;
  let last = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's duration is the gap to the next one (the last sample gets its own delta).
    t += profile.timeDeltas[i];
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    if (t < from || t >= to || dt <= 0) continue;
    first = Math.min(first, t);
    last = Math.max(last, t + dt);
    const node = byId.get(profile.samples[i])!;
    sampled += dt;
    if (node.callFrame.functionName === '(idle)') idle += dt;
    const k = keyOf(node.callFrame);
    frames.set(k, node.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    const areasHere = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      const fk = keyOf(f);
      areasHere.add(stackArea(f));
      if (seen.has(fk)) continue;
      seen.add(fk);
      frames.set(fk, f);
      total.set(fk, (total.get(fk) ?? 0) + dt);
    }
    if (node.callFrame.functionName !== '(idle)') for (const a of areasHere) onStack.set(a, (onStack.get(a) ?? 0) + dt);
  }
  const window = last > first ? last - first : 0;
  const busy = sampled - idle;
  const cost = (k: string): FunctionCost => {
    const f = frames.get(k)!;
    return {
      name: f.functionName || '(anonymous)',
      where: f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '',
      area: areaOf(f),
      self_ms: (self.get(k) ?? 0) / 1000,
      self_pct: busy > 0 ? (100 * (self.get(k) ?? 0)) / busy : 0,
      total_ms: (total.get(k) ?? 0) / 1000,
    };
  };
  const isIdle = (k: string) => frames.get(k)!.functionName === '(idle)';
  const topSelf = [...self.keys()].filter((k) => !isIdle(k)).sort((a, b) => self.get(b)! - self.get(a)!).slice(0, top).map(cost);
  const areas = new Map<string, number>();
  for (const [k, v] of self) {
    if (isIdle(k)) continue;
    const a = areaOf(frames.get(k)!);
    areas.set(a, (areas.get(a) ?? 0) + v);
  }
  // Inclusive time of project code only (library and node frames are below it and would crowd the list).
  const topTotal = [...total.keys()]
    .filter((k) => frames.get(k)!.url.includes('/dist/') && !frames.get(k)!.url.includes('/node_modules/'))
    .sort((a, b) => total.get(b)! - total.get(a)!)
    .slice(0, top)
    .map(cost);
  return {
    window_ms: window / 1000,
    sampled_ms: sampled / 1000,
    busy_pct: sampled > 0 ? (100 * busy) / sampled : 0,
    top_self: topSelf,
    areas: [...areas].map(([area, v]) => ({ area, self_ms: v / 1000, pct: busy > 0 ? (100 * v) / busy : 0 })).sort((a, b) => b.self_ms - a.self_ms),
    on_stack: [...onStack].filter(([a]) => a !== '').map(([area, v]) => ({ area, ms: v / 1000, pct: busy > 0 ? (100 * v) / busy : 0 })).sort((a, b) => b.ms - a.ms),
    top_total: topTotal,
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

export function formatSummary(s: ProfileSummary): string {
  const out: string[] = [];
  out.push(`profile window ${(s.window_ms / 1000).toFixed(1)} s; main thread busy ${s.busy_pct.toFixed(1)} % of it (the rest idle)`);
  out.push('');
  out.push(`top ${s.top_self.length} functions by self time (% of busy time)`);
  out.push(`  ${lpad('self ms', 9)} ${lpad('%', 6)}  ${pad('function', 34)} ${pad('where', 44)} area`);
  for (const f of s.top_self) out.push(`  ${lpad(f.self_ms.toFixed(0), 9)} ${lpad(f.self_pct.toFixed(1), 6)}  ${pad(f.name, 34)} ${pad(f.where, 44)} ${f.area}`);
  out.push('');
  out.push('self time by area');
  for (const a of s.areas.filter((a) => a.pct >= 0.3)) out.push(`  ${lpad(a.self_ms.toFixed(0), 9)} ${lpad(a.pct.toFixed(1), 6)}  ${a.area}`);
  out.push('');
  out.push('share of busy samples with the area anywhere on the stack (overlapping; synchronous stacks only)');
  for (const a of s.on_stack.filter((a) => a.pct >= 0.5)) out.push(`  ${lpad(a.ms.toFixed(0), 9)} ${lpad(a.pct.toFixed(1), 6)}  ${a.area}`);
  out.push('');
  out.push('project functions by inclusive time (synchronous stack only: time after an await is not charged to the caller)');
  for (const f of s.top_total) out.push(`  ${lpad(f.total_ms.toFixed(0), 9)} ${lpad(((100 * f.total_ms) / Math.max(1e-9, (s.sampled_ms * s.busy_pct) / 100)).toFixed(1), 6)}  ${pad(f.name, 34)} ${f.where}`);
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--'));
  if (!file) {
    process.stderr.write('usage: node dist/bench/profile-summary.js <file.cpuprofile> [--from=ms] [--to=ms] [--top=15] [--json]\n');
    process.exit(2);
  }
  const opt = (name: string) => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, { from_ms: opt('from'), to_ms: opt('to'), top: opt('top') });
  process.stdout.write((args.includes('--json') ? JSON.stringify(s, null, 2) : formatSummary(s)) + '\n');
}
