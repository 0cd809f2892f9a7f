// XEP-0363 HTTP File Upload (v1.1, urn:xmpp:http:upload:0): photos, voice notes and files
// in chats. The service at upload.<domain> hands a local user a slot (a signed PUT URL and
// the GET URL) for a file of a given size and type; the HTTP listener takes the PUT,
// streamed to storage, and serves the GET with safe headers, CORS for web clients and byte
// ranges. Bounded: file size (in disco#info, §4), a daily quota per user, files deleted
// after `expire_days`; an account's files go with the account.
//
// Storage (./files.ts): the local disk (<data dir>/upload, ./local.ts; nodes of a cluster
// share that directory) or, with `s3_bucket` set, an S3-compatible object store (./s3.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { x, z, Jid, StanzaError, dataForm, errorReply, type Element, type XepModule } from '../../src/api/index.js';
import { safeName, safeType, Slots, validParts, type FileStore, type Range, type Slot } from './files.js';
import { LocalStore } from './local.js';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const PREFIX = '/upload/';

const Config = z.object({
  /** the upload service's domain ('' = upload.<domain>) */
  domain: z.string().default(''),
  /** largest file, bytes (advertised, §4) */
  max_file_size: z.number().int().positive().default(104_857_600),
  /** bytes one user may upload per 24 h */
  daily_quota: z.number().int().positive().default(1_073_741_824),
  /** days a file is kept (0 = forever) */
  expire_days: z.number().int().min(0).default(30),
  /** seconds a slot's PUT URL stays valid */
  slot_ttl: z.number().int().positive().default(300),
  /** where files are ('' = <data dir>/upload) */
  dir: z.string().default(''),
  /** the URL base clients use ('' = the server's own HTTP listener); set it behind a reverse proxy */
  external_url: z.string().default(''),
  /** an S3-compatible bucket for the files ('' = the local disk, `dir`) */
  s3_bucket: z.coerce.string().default(''),
  /** the S3 API's URL ('' = AWS S3 in `s3_region`) */
  s3_endpoint: z.string().default(''),
  s3_region: z.string().default('us-east-1'),
  /** access key id and secret ('' = the AWS SDK's own chain: AWS_ACCESS_KEY_ID, profile, instance role) */
  s3_access_key: z.coerce.string().default(''),
  s3_secret_key: z.coerce.string().default(''),
  /** bucket in the path (http://host/bucket/key), as MinIO and most S3-compatible stores want, not in the host name */
  s3_path_style: z.boolean().default(false),
});

/** Types shown in place by browsers and clients; anything else is served as an attachment. */
const INLINE = /^(image\/(png|jpeg|gif|webp|avif)|video\/(mp4|webm|ogg)|audio\/(mpeg|ogg|mp4|aac|webm|wav|x-m4a|opus))$/;

const upload: XepModule<z.infer<typeof Config>> = {
  name: 'upload',
  config: Config,
  xeps: [{ n: 363, version: '1.1.0', status: 'complete', note: 'files on local disk or an S3-compatible object store' }],
  async setup(m) {
    const domain = m.config.domain || `upload.${m.host}`;
    const c = m.config;
    let store: FileStore;
    if (c.s3_bucket) {
      // loaded only when used: the AWS SDK costs start-up time and memory
      const { S3Store } = await import('./s3.js');
      const settings = {
        bucket: c.s3_bucket,
        endpoint: c.s3_endpoint,
        region: c.s3_region,
        access_key: c.s3_access_key,
        secret_key: c.s3_secret_key,
        path_style: c.s3_path_style,
      };
      const said = (a: unknown[]): { s3: string } => ({ s3: a.map(String).join(' ') });
      store = await S3Store.open(settings, {
        debug: () => {},
        info: () => {},
        warn: (...a) => m.log.warn(said(a), 'upload: S3 client warning'),
        error: (...a) => m.log.error(said(a), 'upload: S3 client error'),
      });
    } else store = await LocalStore.open(c.dir || join(m.server.dataDir, 'upload'));
    m.onClose(() => store.close());
    const slots = new Slots(store.key);
    const base = (): string => (m.config.external_url || m.server.webBase()).replace(/\/+$/, '');
    m.discoItem(domain, 'HTTP File Upload');

    const urls = (s: Slot): { put: string; get: string } => {
      const path = `${PREFIX}${s.tag}/${s.id}/${encodeURIComponent(s.name)}`;
      const q = new URLSearchParams({
        o: s.owner,
        s: String(s.size),
        t: s.type,
        typed: s.typed ? '1' : '0',
        e: String(s.expires),
        sig: slots.sign(s),
      });
      return { put: `${base()}${path}?${q}`, get: `${base()}${path}` };
    };

    const tooLarge = (): StanzaError =>
      new StanzaError(
        'not-acceptable',
        `files may have at most ${m.config.max_file_size} bytes`,
        'modify',
        x('file-too-large', { xmlns: NS_UPLOAD }, x('max-file-size', null, String(m.config.max_file_size))),
      );

    const slot = async (req: Element, from: Jid): Promise<Element> => {
      if (from.domain !== m.host || !from.local) throw new StanzaError('forbidden', 'uploads are for users of this server');
      const name = safeName(req.attrs.filename ?? '');
      if (!name) throw new StanzaError('bad-request', 'a file name is needed (no path)');
      const sizeAttr = req.attrs.size ?? '';
      if (!/^\d+$/.test(sizeAttr) || Number(sizeAttr) < 1) throw new StanzaError('bad-request', 'size must be a positive number of bytes');
      const size = Number(sizeAttr);
      if (size > m.config.max_file_size) throw tooLarge();
      const used = await store.usedSince(slots.tag(from.bare), Date.now() - 86_400_000);
      if (used + size > m.config.daily_quota)
        throw new StanzaError('resource-constraint', `daily upload quota reached (${m.config.daily_quota} bytes per 24 h)`, 'wait');
      const s = slots.newSlot(
        from.bare,
        name,
        size,
        safeType(req.attrs['content-type']),
        m.config.slot_ttl,
        req.attrs['content-type'] !== undefined,
      );
      const u = urls(s);
      return x('slot', { xmlns: NS_UPLOAD }, x('put', { url: u.put }), x('get', { url: u.get }));
    };

    m.service(domain, async (stanza, from, to) => {
      if (stanza.name !== 'iq') {
        if (stanza.attrs.type !== 'error' && stanza.name === 'message') m.send(errorReply(stanza, new StanzaError('service-unavailable')));
        return;
      }
      const type = stanza.attrs.type;
      if (type === 'result' || type === 'error') return;
      const payload = stanza.getChildElements()[0];
      const reply = (p?: Element): void => m.send(x('iq', { type: 'result', id: stanza.attrs.id, from: to.full, to: from.full }, p));
      try {
        if (to.local || to.resource) throw new StanzaError('item-not-found');
        const ns = payload?.attrs.xmlns;
        if (type === 'get' && ns === NS_DISCO_INFO && !payload!.attrs.node)
          return reply(
            x(
              'query',
              { xmlns: NS_DISCO_INFO },
              x('identity', { category: 'store', type: 'file', name: 'HTTP File Upload' }),
              x('feature', { var: NS_DISCO_INFO }),
              x('feature', { var: NS_UPLOAD }),
              dataForm('result', NS_UPLOAD, [{ var: 'max-file-size', value: m.config.max_file_size }]),
            ),
          );
        if (type === 'get' && ns === NS_DISCO_ITEMS) return reply(x('query', { xmlns: NS_DISCO_ITEMS }));
        if (type === 'get' && ns === NS_UPLOAD && payload!.name === 'request') return reply(await slot(payload!, from));
        throw new StanzaError('service-unavailable');
      } catch (e) {
        const err = e instanceof StanzaError ? e : new StanzaError('internal-server-error');
        if (!(e instanceof StanzaError)) m.log.error({ err: e }, 'upload: slot request failed');
        m.send(errorReply(stanza, err));
      }
    });

    // ---- HTTP ----

    const cors = {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, HEAD, PUT, OPTIONS',
      'access-control-allow-headers': 'Authorization, Content-Type',
      'access-control-max-age': '86400',
    };
    const fail = (res: ServerResponse, code: number, text: string): void => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', ...cors });
      res.end(text + '\n');
    };

    m.http(PREFIX, (req: IncomingMessage, res: ServerResponse, path: string) =>
      route(req, res, path).catch((err: unknown) => {
        // a full disk, a file deleted under a request: this request fails, nothing else
        m.log.warn({ err, method: req.method }, 'upload: request failed');
        if (!res.headersSent) fail(res, 500, 'the server could not do that');
        else res.destroy();
      }),
    );

    const route = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
      const parts = path.slice(PREFIX.length).split('/');
      if (parts.length !== 3) return fail(res, 404, 'not found');
      let name: string;
      try {
        name = decodeURIComponent(parts[2]!);
      } catch {
        return fail(res, 400, 'bad file name');
      }
      const [tag, id] = parts as [string, string];
      if (req.method === 'OPTIONS') {
        res.writeHead(204, cors);
        return void res.end();
      }
      if (req.method === 'PUT') return put(req, res, tag, id, name);
      if (req.method === 'GET' || req.method === 'HEAD') return get(req, res, tag, id, name);
      res.writeHead(405, { allow: 'GET, HEAD, PUT, OPTIONS', ...cors });
      res.end();
    };

    const put = async (req: IncomingMessage, res: ServerResponse, tag: string, id: string, name: string): Promise<void> => {
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const s: Slot = {
        owner: q.get('o') ?? '',
        tag,
        id,
        name,
        size: Number(q.get('s')),
        type: q.get('t') ?? '',
        typed: q.get('typed') === '1',
        expires: Number(q.get('e')),
      };
      if (safeName(name) !== name || !validParts(tag, id, name) || !slots.verify(s, q.get('sig') ?? ''))
        return fail(res, 403, 'not a slot of this server');
      if (s.expires < Date.now() / 1000) return fail(res, 403, 'the slot expired: ask for a new one');
      const length = req.headers['content-length'];
      if (length !== undefined && Number(length) !== s.size) return fail(res, 400, `the slot is for ${s.size} bytes`);
      // a type the client named in its request must be the one it sends (§5); without one, any
      if (q.get('typed') === '1' && req.headers['content-type'] !== undefined && safeType(req.headers['content-type']) !== s.type)
        return fail(res, 400, `the slot is for ${s.type}`);
      // the quota again: slots asked for at once are counted as they are used
      if ((await store.usedSince(s.tag, Date.now() - 86_400_000)) + s.size > m.config.daily_quota)
        return fail(res, 413, 'daily upload quota reached');
      // an untyped slot's file is served with the type its PUT named
      const type = !s.typed && req.headers['content-type'] !== undefined ? safeType(req.headers['content-type']) : s.type;
      const r = await store.put({ ...s, type }, req);
      if (r === 'taken') return fail(res, 409, 'this slot was used already');
      if (r === 'size') return fail(res, 400, `the body was not ${s.size} bytes`);
      res.writeHead(201, cors);
      res.end();
    };

    const get = async (req: IncomingMessage, res: ServerResponse, tag: string, id: string, name: string): Promise<void> => {
      const file = validParts(tag, id, name) ? await store.head(tag, id, name) : undefined;
      if (!file) return fail(res, 404, 'not found');
      const type = safeType(file.type);
      const headers: Record<string, string> = {
        'content-type': type,
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
        'cache-control': 'public, max-age=31536000, immutable',
        'accept-ranges': 'bytes',
        'content-disposition': INLINE.test(type) ? 'inline' : `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
        ...cors,
      };
      const size = file.size;
      const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ''));
      let want: Range = { start: 0, end: size - 1 };
      if (req.headers.range !== undefined) {
        let start = range?.[1] ? Number(range[1]) : NaN;
        let end = range?.[2] ? Number(range[2]) : NaN;
        if (range && !range[1] && range[2]) {
          start = Math.max(0, size - Number(range[2])); // the last N bytes
          end = size - 1;
        } else if (range && Number.isNaN(end)) end = size - 1;
        end = Math.min(end, size - 1);
        if (!range || Number.isNaN(start) || start > end || start >= size) {
          res.writeHead(416, { 'content-range': `bytes */${size}`, ...cors });
          return void res.end();
        }
        want = { start, end };
        res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) });
      } else res.writeHead(200, { ...headers, 'content-length': String(size) });
      if (req.method === 'HEAD') return void res.end();
      // a client that goes away ends only this download (the store closes the file or its S3 request)
      await store.send(tag, id, name, want, res).catch((err: unknown) => {
        m.log.debug({ err }, 'upload: a download ended early');
        res.destroy();
      });
    };

    // an account's files go with it; old files go after expire_days
    m.hook('user/deleted', (user) => store.removeOwner(slots.tag(`${user}@${m.host}`)));
    const sweep = (): void =>
      void store.sweep(m.config.expire_days * 86_400_000).then(
        (n) => n && m.log.info({ removed: n }, 'upload: expired files deleted'),
        (err: unknown) => m.log.warn({ err }, 'upload: sweeping failed'),
      );
    const timer = setInterval(sweep, 3_600_000);
    timer.unref();
    m.onClose(() => clearInterval(timer));
  },
};

export default upload;
