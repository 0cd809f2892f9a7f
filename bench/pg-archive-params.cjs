// What the event loop spends handing one archive batch to `pg` (Postgres), without a
// database: the chunk bodies as a text[] parameter (pg escapes every `"` and `\` of
// every stanza into one array literal string: the way before) against one Buffer sent
// as bytea plus offsets and lengths (src/storage/sql/archive.ts now). CHUNKS chunks of
// PER rows (one owner's copy of a message) of about SIZE bytes, timed over REPEAT batches, alternating.
//
//   node bench/pg-archive-params.cjs            CHUNKS=1000 PER=10 SIZE=1000 REPEAT=20
const path = require('path');
const { prepareValue } = require(path.join(__dirname, '..', 'node_modules', 'pg', 'lib', 'utils.js'));
const CHUNKS = +(process.env.CHUNKS || 1000), PER = +(process.env.PER || 10), SIZE = +(process.env.SIZE || 1000), REPEAT = +(process.env.REPEAT || 20);
const stanza = '<message xmlns="jabber:client" to="u123@localhost/bench" from="u124@localhost/bench" type="chat" id="abcdefgh12345"><body>' + 'x'.repeat(Math.max(0, SIZE - 200)) + '</body><stanza-id xmlns="urn:xmpp:sid:0" by="u123@localhost" id="AbCdEfGhIjKlMnOp"/></message>';
// the bodies as chunkRows makes them: subarrays of one buffer, one after another
const parts = [];
for (let i = 0; i < CHUNKS; i++) parts.push(Array.from({ length: PER }, (_, k) => `${1e15 + i * PER + k},20,-1,${stanza.length};u${i}@localhost/bench${stanza}`).join(''));
const out = Buffer.from(parts.join(''));
const bodies = [];
for (let i = 0, at = 0; i < CHUNKS; i++) { const n = Buffer.byteLength(parts[i]); bodies.push(out.subarray(at, at + n)); at += n; }
const ways = {
  'text[]': () => prepareValue(bodies.map((b) => b.toString('utf8'))).length,
  'bytea+offsets': () => {
    const offs = [], lens = [];
    for (const b of bodies) { offs.push(b.byteOffset - bodies[0].byteOffset); lens.push(b.byteLength); }
    const all = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    return prepareValue(offs).length + prepareValue(lens).length + prepareValue(all).length;
  },
};
for (let round = 0; round < 2; round++)
  for (const [name, f] of Object.entries(ways)) {
    const t = process.hrtime.bigint();
    for (let r = 0; r < REPEAT; r++) f();
    const ms = Number(process.hrtime.bigint() - t) / REPEAT / 1e6;
    console.log(`${name.padEnd(14)} ${ms.toFixed(2)} ms per batch of ${CHUNKS * PER} rows (${(out.length / 1e6).toFixed(1)} MB), ${((ms * 1000) / (CHUNKS * PER)).toFixed(2)} µs per row`);
  }
