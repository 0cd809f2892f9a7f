// XEP-0220 dialback keys (XEP-0185): the XEPs' own examples.
import assert from 'node:assert/strict';
import { dialbackKey, dialbackName, dialbackPrefixes } from '../../src/s2s/dialback.js';

describe('dialback keys (XEP-0185, XEP-0220)', () => {
  it('match the XEPs’ examples', () => {
    assert.equal(
      dialbackKey('s3cr3tf0rd14lb4ck', 'xmpp.example.com', 'example.org', 'D60000229F'),
      '37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643',
    );
    assert.equal(dialbackKey('s3cr3tf0rd14lb4ck', 'montague.example', 'capulet.example', 'D60000229F').slice(0, 8), 'b4835385');
    assert.equal(dialbackKey('d14lb4ck43v3r', 'capulet.example', 'montague.example', '417GAF25').slice(0, 8), '225cc5aa');
  });

  it('knows dialback elements by the prefix the header declared, or by their namespace', () => {
    const prefixes = dialbackPrefixes({ 'xmlns:db': 'jabber:server:dialback', 'xmlns:stream': 'http://etherx.jabber.org/streams' });
    assert.deepEqual([...prefixes], ['db']);
    assert.equal(dialbackName({ name: 'db:result', attrs: {} }, prefixes), 'result');
    assert.equal(dialbackName({ name: 'x:result', attrs: {} }, prefixes), undefined);
    assert.equal(dialbackName({ name: 'verify', attrs: { xmlns: 'jabber:server:dialback' } }, prefixes), 'verify');
    assert.equal(dialbackName({ name: 'message', attrs: {} }, prefixes), undefined);
  });
});
