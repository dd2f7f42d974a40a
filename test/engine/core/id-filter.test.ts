import t from 'tap';
import { IdFilter } from '../../../engine/core/id-filter.js';

// Ids shaped like real client_order_ids: short, sequential, differing in a character or two.
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

t.test('no false negatives, across segment growth', async (t) => {
  const f = new IdFilter(64, 0.002);
  const added = ids('agent7', 50_000);
  for (const id of added) f.add(id);
  t.equal(f.size, 50_000);
  t.equal(added.filter((id) => !f.has(id)).length, 0, 'every added id answers maybe');
});

t.test('the false-positive rate stays under its bound, and memory near the optimum', async (t) => {
  const f = new IdFilter(1024, 0.002);
  for (const id of ids('soak3', 200_000)) f.add(id);
  const probes = ids('soak4', 200_000);
  const rate = probes.filter((id) => f.has(id)).length / probes.length;
  t.ok(rate < 0.002, `false-positive rate ${rate}`);
  // One optimal filter at 0.2 % needs 1.6 bytes per id; growing segments at tighter rates cost more.
  const perId = f.bytes / f.size;
  t.ok(perId < 3.5, `${perId.toFixed(2)} bytes per id`);
});

t.test('an empty filter has nothing; unicode ids are hashed by their code units', async (t) => {
  const f = new IdFilter();
  t.notOk(f.has('x'));
  f.add('ordre-é-1');
  t.ok(f.has('ordre-é-1'));
  t.notOk(f.has('ordre-e-1'));
  t.equal(f.bytes > 0, true);
});
