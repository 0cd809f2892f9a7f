// Minimal typings for the parts of @xmpp/client the tests use (the package ships none).
declare module '@xmpp/xml' {
  import { Element } from 'ltx';
  export { Element };
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: (Element | string)[]): Element;
  export default xml;
}

declare module '@xmpp/client' {
  import { EventEmitter } from 'node:events';
  import type { Element } from 'ltx';
  export { xml } from '@xmpp/xml';
  export interface Client extends EventEmitter {
    jid: { toString(): string; local: string; domain: string; resource: string } | null;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    iqCallee: {
      get(ns: string, name: string, handler: (ctx: unknown) => Element | Promise<Element>): void;
      /** the handler's answer: an element (the result's payload, or an <error/>), or true for an empty result */
      set(ns: string, name: string, handler: (ctx: { stanza: Element }) => Element | boolean | Promise<Element | boolean>): void;
    };
  }
  export function client(opts: Record<string, unknown>): Client;
}
