// serialize(): an element's XML is made once while the element is unchanged, and made
// again after the changes the server makes to stanzas in flight.
import assert from 'node:assert/strict';
import { Element, parseXml, serialize, toXml, x } from '../../src/xml/index.js';
import { StreamParser } from '../../src/xml/parser.js';

describe('serialize (the remembered XML of an element)', () => {
  it('gives the same text as toString, and the same string again while nothing changed', () => {
    const m = x('message', { to: 'a@b', type: 'chat' }, x('body', {}, 'hi & bye'));
    const first = serialize(m);
    assert.equal(first, m.toString());
    m.toString = () => 'not called';
    assert.equal(serialize(m), first);
  });

  it('makes it again after a child is added, the children are replaced, or to/from change', () => {
    const m = x('message', { to: 'a@b', type: 'chat' }, x('body', {}, 'hi'));
    serialize(m);
    m.children.push(x('stanza-id', { xmlns: 'urn:xmpp:sid:0', id: '1', by: 'a@b' }));
    assert.match(serialize(m), /<stanza-id/);
    m.children = m.children.filter((c) => typeof c === 'string' || c.name !== 'stanza-id');
    assert.doesNotMatch(serialize(m), /<stanza-id/);
    m.attrs.to = 'c@d';
    assert.match(serialize(m), /to="c@d"/);
    m.attrs.from = 'e@f/r';
    assert.match(serialize(m), /from="e@f\/r"/);
    assert.equal(serialize(m), m.toString());
  });
});

describe('toXml (serialise without the writer callbacks)', () => {
  const same = (el: Element): void => assert.equal(toXml(el), el.toString());

  it('gives exactly ltx toString() text for stanzas with every character to escape', () => {
    same(x('message', { to: 'a@b/r"1', from: "c'd@e/<f>", type: 'chat', id: '&amp;' }, x('body', {}, 'a < b && c > "d" \'e\'')));
    same(x('iq', { type: 'result', id: 7 as unknown as string }));
    same(x('presence', {}, x('show', {}, 'away'), x('status', {}, ''), x('c', { xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1', ver: 'ab+/=' })));
    same(x('a', {}, 'text', x('b', {}, x('c', {}), 'more & more'), 'tail', x('d', { e: '' })));
    const withNumber = x('a', {});
    withNumber.children.push(42 as unknown as Element, null as unknown as Element, undefined as unknown as Element);
    same(withNumber);
    const undef = x('a', { b: 'x' });
    (undef.attrs as Record<string, unknown>).c = undefined;
    (undef.attrs as Record<string, unknown>).d = null;
    same(undef);
  });

  it('gives ltx toString() text for what the stream parser makes of client input', () => {
    const inputs = [
      `<message to='bob@localhost/pc' type='chat' id='x1'><body>hi &amp; &lt;bye&gt; &quot;q&quot; &apos;a&apos; &#x1F600;</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
      `<iq type='get' id='q'><query xmlns='jabber:iq:roster' ver=''/></iq>`,
      `<presence><show>dnd</show><status>  spaces\n and lines  </status><priority>-1</priority></presence>`,
      `<message to='r@muc' type='groupchat'><body><![CDATA[<not> & markup]]></body></message>`,
    ];
    for (const input of inputs) {
      const got: Element[] = [];
      const p = new StreamParser(
        { onOpen() {}, onElement: (el: Element) => got.push(el), onClose() {}, onError: (c: string, t: string) => assert.fail(`${c}: ${t}`) },
        { maxStanzaSize: 65536, framed: false },
      );
      p.write(Buffer.from(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>${input}`));
      assert.equal(got.length, 1, input);
      same(got[0]!);
      same(parseXml(got[0]!.toString()));
    }
  });
});
