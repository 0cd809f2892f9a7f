// XEP-0220 dialback keys (XEP-0185): the XEPs' own examples.
import assert from 'node:assert/strict';
import { dialbackKey, dialbackName, dialbackPrefixes } from '../../src/s2s/dialback.js';
import { parseHostOverride } from '../../src/s2s/resolve.js';

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

describe('s2s.hosts entries (RFC 6120 §3.2.3, XEP-0368)', () => {
  it('read host, host:port, [v6]:port and xmpps://host[:port] (direct TLS, 5270 by default)', () => {
    assert.deepEqual(parseHostOverride('10.0.0.5'), { host: '10.0.0.5', port: 5269, tls: false });
    assert.deepEqual(parseHostOverride('example.org:5299'), { host: 'example.org', port: 5299, tls: false });
    assert.deepEqual(parseHostOverride('[::1]:5269'), { host: '::1', port: 5269, tls: false });
    assert.deepEqual(parseHostOverride('xmpps://example.org'), { host: 'example.org', port: 5270, tls: true });
    assert.deepEqual(parseHostOverride('xmpps://10.0.0.5:443'), { host: '10.0.0.5', port: 443, tls: true });
    assert.equal(parseHostOverride('https://example.org'), undefined);
    assert.equal(parseHostOverride('a:b:c'), undefined);
  });
});
