// serialize(): an element's XML is made once while the element is unchanged, and made
// again after the changes the server makes to stanzas in flight.
import assert from 'node:assert/strict';
import { serialize, x } from '../../src/xml/index.js';

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
