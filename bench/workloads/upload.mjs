// upload: XEP-0363 HTTP File Upload of one large file. One user asks the server for a
// slot (XMPP), PUTs `--mb` MiB to it over HTTP from a generator (no file on the client
// side), then GETs it back; the server's RSS is sampled every 50 ms throughout, to show
// that the file is streamed to storage and back (never held in memory). Reports MiB/s and
// server CPU per GiB for each direction, and the RSS growth over the baseline.
//
// Files go to the server's data dir, or with `--uzzap-env UZZAP_UPLOAD_S3_BUCKET=<name>`
// (and no UZZAP_UPLOAD_S3_ENDPOINT) to that bucket of an s3rver (the devDependency, an S3
// API server in Node) started here on loopback: it runs in this process, on the
// generator's core, so its CPU counts as the generator's.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { attr } from '../lib/xmpp-lite.mjs';
import { cpuMeter, round, rssBytes, sleep } from '../lib/proc.mjs';

export const defaults = { mb: 1024 };
export const quick = { mb: 100 };
export const usersNeeded = () => 1;
export const targets = ['uzzap'];
// room for the file in the size limit and the daily quota
export const uzzapEnv = (o) => ({
  UZZAP_MODULES_UPLOAD_MAX_FILE_SIZE: String(o.mb * 1048576 + 1),
  UZZAP_MODULES_UPLOAD_DAILY_QUOTA: String(o.mb * 1048576 * 4),
});

/** With an S3 bucket named and no endpoint: an s3rver on loopback holding that bucket. */
export async function prepare({ uzzapEnv }) {
  const env = (k) => uzzapEnv[`UZZAP_UPLOAD_${k}`] ?? uzzapEnv[`UZZAP_MODULES_UPLOAD_${k}`];
  const bucket = env('S3_BUCKET');
  if (!bucket || env('S3_ENDPOINT')) return null;
  const S3rver = createRequire(import.meta.url)('s3rver');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uzzap-bench-s3rver-'));
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const { port } = await s3rver.run();
  Object.assign(uzzapEnv, {
    UZZAP_UPLOAD_S3_ENDPOINT: `http://127.0.0.1:${port}`,
    UZZAP_UPLOAD_S3_ACCESS_KEY: 'S3RVER',
    UZZAP_UPLOAD_S3_SECRET_KEY: 'S3RVER',
    UZZAP_UPLOAD_S3_PATH_STYLE: 'true',
  });
  return {
    s3rver: { port },
    close: async () => {
      await s3rver.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const CHUNK = Buffer.alloc(1 << 16, 0x5a);

/** A readable stream of `size` bytes (64 KiB chunks of one buffer: nothing accumulates here). */
function generator(size) {
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, CHUNK.length);
      left -= n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

/** RSS of the server every 50 ms while `fn` runs: the baseline before and the highest seen. */
async function watchRss(pid, fn) {
  const base = rssBytes(pid);
  let peak = base;
  const t = setInterval(() => {
    const r = rssBytes(pid);
    if (r > peak) peak = r;
  }, 50);
  try {
    const out = await fn();
    return { out, base, peak };
  } finally {
    clearInterval(t);
  }
}

function request(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let n = 0;
      res.on('data', (d) => (n += d.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

export async function run(ctx, o) {
  try {
    return await measure(ctx, o);
  } finally {
    await ctx.prepared?.close();
  }
}

async function measure(ctx, o) {
  const { target, newConn, prepared } = ctx;
  const size = o.mb * 1048576;
  const c = newConn(1);
  await c.login({ presence: false });
  const id = 'slot1';
  const answered = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no answer to the slot request within 10 s')), 10_000);
    c.onStanza = (s) => {
      if (!s.startsWith('<iq') || attr(s, 'id') !== id) return;
      clearTimeout(t);
      resolve(s);
    };
  });
  c.send(
    `<iq type='get' id='${id}' to='upload.${target.domain}'><request xmlns='urn:xmpp:http:upload:0' filename='big.bin' size='${size}' content-type='application/octet-stream'/></iq>`,
  );
  const answer = await answered;
  const put = /<put url='([^']+)'|<put url="([^"]+)"/.exec(answer);
  const get = /<get url='([^']+)'|<get url="([^"]+)"/.exec(answer);
  if (!put || !get) throw new Error(`no slot: ${answer.slice(0, 300)}`);
  const unescape = (u) => u.replace(/&amp;/g, '&');
  const putUrl = unescape(put[1] ?? put[2]);
  const getUrl = unescape(get[1] ?? get[2]);
  await sleep(500); // let the server settle after the login

  const m1 = cpuMeter(target.pid);
  const up = await watchRss(target.pid, () =>
    request('PUT', putUrl, generator(size), { 'content-type': 'application/octet-stream', 'content-length': String(size) }),
  );
  const a = m1();
  if (up.out.status !== 201) throw new Error(`PUT answered ${up.out.status}`);
  const m2 = cpuMeter(target.pid);
  const down = await watchRss(target.pid, () => request('GET', getUrl));
  const b = m2();
  if (down.out.status !== 200 || down.out.bytes !== size) throw new Error(`GET answered ${down.out.status} with ${down.out.bytes} bytes`);
  c.close();

  const mib = (x) => round(x / 1048576, 1);
  const result = {
    mb: o.mb,
    store: prepared ? 's3rver' : 'disk',
    put_mib_per_s: round(o.mb / a.wall, 1),
    put_server_cpu_s_per_gib: a.server_cpu_s == null ? null : round((a.server_cpu_s / o.mb) * 1024, 2),
    put_rss_growth_mib: mib(up.peak - up.base),
    get_mib_per_s: round(o.mb / b.wall, 1),
    get_server_cpu_s_per_gib: b.server_cpu_s == null ? null : round((b.server_cpu_s / o.mb) * 1024, 2),
    get_rss_growth_mib: mib(down.peak - down.base),
    rss_before_mib: mib(up.base),
    server_cpu_pct_put: a.server_cpu_pct,
    generator_cpu_pct_put: a.generator_cpu_pct,
    other_cpu_pct: a.other_cpu_pct,
  };
  const summary =
    `upload ${target.name}: ${o.mb} MiB to ${result.store}; PUT ${result.put_mib_per_s} MiB/s, ${result.put_server_cpu_s_per_gib} CPU s/GiB, RSS +${result.put_rss_growth_mib} MiB; ` +
    `GET ${result.get_mib_per_s} MiB/s, ${result.get_server_cpu_s_per_gib} CPU s/GiB, RSS +${result.get_rss_growth_mib} MiB`;
  return { result, summary };
}
