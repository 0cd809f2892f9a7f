// XEP-0198 Stream Management: the protocol. <enable/>, <r/>, <a/> and <resume/>
// reach this module through its nonza registration; the mechanisms it drives
// belong to the core, because a managed session outlives its connection:
//   src/session/session.ts  the unacknowledged queue, 'h' counting, ack requests
//   src/session/manager.ts  resumable sessions, detach, expiry into offline storage
//   src/stream/c2s.ts       liveness checks (tick); a lost connection detaches a resumable session
// Disabled, the elements are unknown to the server (unsupported-stanza-type,
// RFC 6120 §4.9.3.21): a client negotiates stream management only when the server
// offers the <sm/> feature, which the module stops offering too.
// Settings are the core's `sm.*` keys.
import {
  dateTime,
  escapeXML,
  type AckState,
  type Element,
  type InlineAnswer,
  type NonzaStream,
  type StreamSession,
  type XepModule,
} from '../../src/api/index.js';

const NS = 'urn:xmpp:sm:3';

const failure = (condition: string, h?: number): string =>
  `<failed xmlns='${NS}'${h === undefined ? '' : ` h='${h}'`}><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`;
const failed = (s: NonzaStream, condition: string, h?: number): void => s.write(failure(condition, h));

/** an 'h' attribute: an unsigned 32-bit integer */
const validH = (h: string | undefined): h is string => h !== undefined && /^\d+$/.test(h) && Number(h) <= 0xffffffff;

function handle(el: Element, s: NonzaStream, domain: string): void | Promise<void> {
  const session = s.session;
  switch (el.name) {
    case 'enable': {
      if (!session) return failed(s, 'unexpected-request'); // only after binding (§4)
      // §6: an error on <enable/> is a <failed/>; the stream goes on with SM as it was
      if (session.sm) return failed(s, 'unexpected-request');
      return s.write(enable(el, s));
    }
    case 'r':
      if (!session?.sm) return failed(s, 'unexpected-request');
      return s.write(`<a xmlns='${NS}' h='${session.sm.inH}'/>`);
    case 'a':
      if (session?.sm) acknowledge(s, session.sm, el.attrs.h);
      return;
    case 'resume': {
      const r = resume(el, s, domain);
      const write = (a: InlineAnswer): void => {
        s.write(a.xml);
        a.after?.();
      };
      return r instanceof Promise ? r.then(write) : write(r);
    }
    default:
      return s.close('unsupported-stanza-type', `<${el.name}/> is not a stream management element`);
  }
}

/** Acknowledgements on for the bound session: the <enabled/> to answer with. */
function enable(el: Element, s: NonzaStream): string {
  const sm = s.enableAcks(el.attrs.resume === 'true' || el.attrs.resume === '1');
  return sm.resumable ? `<enabled xmlns='${NS}' id='${sm.id}' resume='true' max='${s.resumeWindow}'/>` : `<enabled xmlns='${NS}'/>`;
}

/** Apply a client's 'h' to the unacknowledged queue; false if it closed the stream. */
function acknowledge(s: NonzaStream, sm: AckState, hAttr: string | undefined): boolean {
  if (!validH(hAttr)) {
    s.close('undefined-condition', "an <a/> needs a numeric 'h'");
    return false;
  }
  const h = Number(hAttr);
  const n = (h - sm.acked) >>> 0;
  if (n > sm.queue.length) {
    const sent = (sm.acked + sm.queue.length) >>> 0;
    s.close(
      'undefined-condition',
      `You acknowledged ${h} stanzas, but I only sent you ${sent} so far.`,
      `<handled-count-too-high xmlns='${NS}' h='${h}' send-count='${sent}'/>`,
    );
    return false;
  }
  sm.queue.splice(0, n);
  sm.acked = h;
  return true;
}

/**
 * A <resume/>, on its own (§5) or inside SASL2's <authenticate/> (§4 of XEP-0198's
 * SASL2 section): the answer, and the retransmission to run once it is written.
 */
function resume(el: Element, s: NonzaStream, domain: string): InlineAnswer | Promise<InlineAnswer> {
  if (!s.canResume) return { xml: failure('unexpected-request') };
  const previd = el.attrs.previd ?? '';
  const found = s.findSession(previd);
  // in a cluster the session may be on another node: it moves here first
  if (found instanceof Promise)
    return found.then((f) => (s.canResume ? resumed(el, s, domain, previd, f) : { xml: failure('unexpected-request') }));
  return resumed(el, s, domain, previd, found);
}

function resumed(el: Element, s: NonzaStream, domain: string, previd: string, found: StreamSession | { h?: number }): InlineAnswer {
  // §5: the client may bind a resource now instead
  if (!('jid' in found)) return { xml: failure('item-not-found', found.h) };
  // the client's 'h' is checked before anything changes: a bad one must not cost the live session
  const sm = found.sm!;
  const hAttr = el.attrs.h;
  if (!validH(hAttr) || (Number(hAttr) - sm.acked) >>> 0 > sm.queue.length) return { xml: failure('bad-request') };
  s.resume(found);
  return {
    xml: `<resumed xmlns='${NS}' previd='${escapeXML(previd)}' h='${sm.inH}'/>`,
    after: () => {
      if (!acknowledge(s, sm, hAttr)) return;
      // retransmit exactly what the client has not acknowledged, once, in order
      for (const q of sm.queue) s.writeStanza(q.kind === 'message' ? withDelay(q.xml, q.at, domain) : q.xml, q.kind);
      // XEP-0352: a resumed stream starts active; what was held goes out after the retransmission
      found.setInactive(false);
      sm.sinceRequest = 0;
      if (sm.queue.length) found.requestAck();
    },
  };
}

/** A retransmitted message gets the time it was first sent (XEP-0203), unless it has one already. */
function withDelay(xml: string, at: number, domain: string): string {
  if (!xml.endsWith('</message>') || xml.includes('urn:xmpp:delay')) return xml;
  return `${xml.slice(0, -'</message>'.length)}<delay xmlns='urn:xmpp:delay' from='${domain}' stamp='${dateTime(at)}'>Resent</delay></message>`;
}

const sm: XepModule = {
  name: 'sm',
  xeps: [
    {
      n: 198,
      version: '1.6.3',
      status: 'complete',
      note: 'resumption; unacknowledged messages go to offline storage when the window ends',
    },
  ],
  setup(m) {
    m.streamFeature(`<sm xmlns='${NS}'/>`, 20, 'post-auth', (f) => !f.smEnabled);
    m.nonza(NS, (el, s) => handle(el, s, m.host));
    // XEP-0388/0386: <resume/> inside SASL2's <authenticate/>, <enable/> inside Bind 2's <bind/>
    m.inline(NS, {
      saslFeature: `<sm xmlns='${NS}'/>`,
      sasl: (el, s) => (el.name === 'resume' ? resume(el, s, m.host) : { xml: '' }),
      bind: (el, s) => (el.name === 'enable' && s.session && !s.session.sm ? enable(el, s) : undefined),
    });
  },
};

export default sm;
