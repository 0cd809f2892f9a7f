// The HTTP side of BOSH (XEP-0124) at /http-bind: a request body read with a
// bound and parsed into its <body/> element, and the <body/> answers written
// back (CORS headers included). The session state machine is bosh.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamParser } from '../xml/parser.js';
import type { Element } from '../xml/index.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_STREAM = 'http://etherx.jabber.org/streams';

/** Answer a request with an XML body (CORS open); nothing if it was already answered. */
export function send(res: ServerResponse, status: number, body: string): void {
  if (res.writableEnded) return;
  res.writeHead(status, {
    'content-type': 'text/xml; charset=utf-8',
    'access-control-allow-origin': '*',
    'access-control-allow-headers': 'content-type',
  });
  res.end(body);
}

/** End the session from the HTTP side: a terminate <body/> with this condition. */
export function terminate(res: ServerResponse, condition: string): void {
  send(res, 200, `<body xmlns='${NS_HTTPBIND}' type='terminate' condition='${condition}'/>`);
}

/** Read a request body, bounded. */
export function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

/** Parse one HTTP request body into its <body/> element, with the stream parser's limits. */
export function parseBody(text: string, maxSize: number): Element | string {
  let result: Element | string = 'empty request';
  const parser = new StreamParser(
    {
      onOpen: () => undefined,
      onElement: (el) => {
        if (typeof result === 'string') result = el;
      },
      onClose: () => undefined,
      onError: (_c, t) => {
        result = t;
      },
    },
    { maxStanzaSize: maxSize, framed: true },
  );
  parser.write(Buffer.from(text));
  return result;
}

/** A response <body/> around payload, with the namespaces and these attributes. */
export function responseBody(payload: string, attrs: Record<string, string>): string {
  const all: Record<string, string> = { xmlns: NS_HTTPBIND, 'xmlns:stream': NS_STREAM, ...attrs };
  const extra = Object.entries(all)
    .map(([k, v]) => ` ${k}='${v}'`)
    .join('');
  return `<body${extra}>${payload}</body>`;
}
