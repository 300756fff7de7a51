// tests/node/csc.mjs — node-redis 5 with RESP3 and its client-side cache,
// reading through redsnano while other clients write (run by
// tests/integration/test_node.c). Usage: node csc.mjs PROXY_PORT REDIS_PORT
// Prints one line per check; exits 0 when every check holds, 1 otherwise.
import { createClient } from 'redis';

const [proxyPort, redisPort] = process.argv.slice(2).map(Number);
const FRESH_MS = 100;          // a write must be seen within this
const HITS = 200;              // cached reads that must stay local
let failed = 0;

function check(ok, what) {
  console.log(`${ok ? 'ok' : 'FAIL'} ${what}`);
  if (!ok) failed++;
}

async function getCalls(direct) {
  const info = await direct.info('commandstats');
  const m = /cmdstat_get:calls=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

// Read through the cache until it returns want; the ms it took.
async function seenWithin(reader, key, want) {
  const t0 = performance.now();
  for (;;) {
    if ((await reader.get(key)) === want) return performance.now() - t0;
    if (performance.now() - t0 > 2000) return Infinity;
    await new Promise((r) => setImmediate(r));
  }
}

const url = (port) => `redis://127.0.0.1:${port}`;
const reader = createClient({ url: url(proxyPort), RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
const writer = createClient({ url: url(proxyPort) });
const direct = createClient({ url: url(redisPort) });
for (const c of [reader, writer, direct]) c.on('error', (e) => console.log(`client error: ${e}`));
await Promise.all([reader.connect(), writer.connect(), direct.connect()]);

const key = `csc:${process.pid}`;
await writer.set(key, 'v1');
check((await reader.get(key)) === 'v1', 'first read through the proxy returns the value');
const before = await getCalls(direct);
const hits0 = reader.clientSideCache.stats().hitCount;
for (let i = 0; i < HITS; i++) {
  if ((await reader.get(key)) !== 'v1') { check(false, `cached read ${i} returned another value`); break; }
}
const hits = reader.clientSideCache.stats().hitCount - hits0;
const calls = (await getCalls(direct)) - before;
check(hits === HITS, `${HITS} reads were cache hits (${hits})`);
check(calls === 0, `no GET reached Redis for them (${calls})`);

await writer.set(key, 'v2');
let ms = await seenWithin(reader, key, 'v2');
check(ms < FRESH_MS, `a write through the proxy is seen in ${ms.toFixed(1)} ms (< ${FRESH_MS})`);

await reader.get(key);   // cached again
await direct.set(key, 'v3');
ms = await seenWithin(reader, key, 'v3');
check(ms < FRESH_MS, `a write straight to Redis is seen in ${ms.toFixed(1)} ms (< ${FRESH_MS})`);

await writer.hSet(`${key}:h`, { a: '1', b: '2' });
const h1 = await reader.hGetAll(`${key}:h`);
const h2 = await reader.hGetAll(`${key}:h`);
check(h1.a === '1' && h2.b === '2', 'HGETALL (a RESP3 map) is read and cached');
await direct.hSet(`${key}:h`, 'a', '9');
const t0 = performance.now();
let seen = false;
while (performance.now() - t0 < 2000) {
  if ((await reader.hGetAll(`${key}:h`)).a === '9') { seen = true; break; }
  await new Promise((r) => setImmediate(r));
}
check(seen && performance.now() - t0 < FRESH_MS, `a hash change straight to Redis is seen in ${(performance.now() - t0).toFixed(1)} ms`);

await direct.expire(key, 1);
await reader.get(key);
const t1 = performance.now();
ms = await seenWithin(reader, key, null);
check(ms < 2000, `an expiry is seen (${(performance.now() - t1).toFixed(0)} ms after the read; Redis expires within ~1.1 s)`);

await direct.del([key, `${key}:h`]);
await Promise.all([reader.quit(), writer.quit(), direct.quit()]);
process.exit(failed ? 1 : 0);
