// slowreader: one client stops reading (a phone in a TCP zero window) while
// another sends it M messages of B bytes as fast as its socket takes them; the
// other users must not notice. P pairs of other users exchange messages at a
// fixed rate (open loop) the whole time; their latency is measured before the
// episode (baseline) and during it (from the first flood message until the
// flooder's closing ping is answered, plus `settle` seconds), and the server's
// RSS (process tree) is sampled every 50 ms. The slow client enabled stream
// management with resumption, as a phone would; reported: whether and when the
// server gave up on its connection (the documented fate: detached, resumable).
import { attr } from '../lib/xmpp-lite.mjs';
import { cpuMeter, percentile, round, rssBytes, sleep } from '../lib/proc.mjs';
import { loginPairs, openLoop } from '../lib/pairs.mjs';

export const needsSm = true;
export const defaults = { pairs: 50, rate: 1000, messages: 20000, bodySize: 1000, baseline: 5, settle: 2, concurrency: 100, rounds: 1 };
export const quick = { pairs: 10, messages: 2000, baseline: 2, rounds: 1 };
export const usersNeeded = (o) => 2 * o.pairs + 2;

const lat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: round(percentile(s, 50), 2), p90: round(percentile(s, 90), 2), p99: round(percentile(s, 99), 2), max: round(s.at(-1) ?? 0, 2) };
};

export async function run(ctx, o) {
  const { target, newConn } = ctx;
  const conns = await loginPairs(newConn, o.pairs, o.concurrency);
  const flooder = newConn(2 * o.pairs + 2);
  await flooder.login({ presence: true, roster: false, resource: 'pc' });

  // --- background: P pairs, `rate` messages/s in all, latency stamped in the body
  let phase = 'warmup';
  let samples = { baseline: [], episode: [] };
  let seq = 0;
  for (let p = 0; p < o.pairs; p++)
    for (const c of [conns[2 * p], conns[2 * p + 1]])
      c.onStanza = (s) => {
        if (!s.startsWith('<message')) return;
        const i = s.indexOf('<body>');
        if (i < 0 || attr(s, 'type') !== 'chat') return;
        const d = performance.now() - parseFloat(s.slice(i + 6, s.indexOf('|', i)));
        if (phase === 'baseline' || phase === 'episode') samples[phase].push(d);
      };
  const pacer = openLoop(conns, o.pairs, o.rate, (a, b) =>
    a.send(`<message type='chat' to='${b.jid}' id='b${(++seq).toString(36)}'><body>${performance.now().toFixed(3)}|bg</body></message>`),
  );

  await sleep(1000);
  const MiB = 1024 * 1024;
  const rounds = [];
  let rssFirst = 0;
  // each round a new slow client (another resource of the same account) and the same
  // flood: the first round's growth includes what any sustained load grows once (the
  // young generation, the archive writer's page cache); later rounds show what one more
  // slow reader costs a server that has warmed up
  for (let r = 1; r <= o.rounds; r++) {
    samples = { baseline: [], episode: [] };
    const victim = newConn(2 * o.pairs + 1);
    await victim.login({ presence: true, roster: false, resource: `phone${r}`, sm: true });
    phase = 'baseline';
    await sleep(o.baseline * 1000);
    const rssBefore = rssBytes(target.pid);
    if (r === 1) rssFirst = rssBefore;

    // --- the episode: the victim stops reading; the flooder sends M messages to it
    let victimClosedAt = null;
    victim.onClose = () => (victimClosedAt ??= performance.now());
    let victimGot = 0;
    let victimError = null;
    victim.onStanza = (s) => {
      if (s.startsWith('<message')) victimGot++;
      else if (s.includes('stream:error') || s.includes('<error')) victimError ??= s.slice(0, 300);
    };
    victim.sock.pause();
    let rssMax = rssBefore;
    const sampler = setInterval(() => {
      const v = rssBytes(target.pid);
      if (v > rssMax) rssMax = v;
    }, 50);
    const meter = cpuMeter(target.pid);
    phase = 'episode';
    const e0 = performance.now();
    const pad = 'x'.repeat(o.bodySize);
    for (let i = 0; i < o.messages; i++)
      flooder.send(`<message type='chat' to='${victim.jid}' id='f${r}-${i}'><body>${pad}</body></message>`);
    // the flooder's ping comes back once the server has taken every message before it
    const pong = new Promise((resolve) => {
      flooder.onStanza = (s) => {
        if (s.startsWith('<iq') && attr(s, 'id') === `flood-done-${r}`) resolve();
      };
    });
    flooder.send(`<iq type='get' id='flood-done-${r}' to='${target.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await pong;
    const taken = performance.now() - e0;
    await sleep(o.settle * 1000);
    phase = 'done';
    const m = meter();
    clearInterval(sampler);
    const rssAfter = rssBytes(target.pid);
    // what the server did with the slow client: read what it was sent (a paused socket
    // learns nothing, not even its own closing) for up to 2 s
    victim.sock.resume();
    const readUntil = performance.now() + 2000;
    while (performance.now() < readUntil && victimClosedAt === null) await sleep(50);
    victim.destroy();

    const base = lat(samples.baseline);
    const during = lat(samples.episode);
    rounds.push({
      round: r,
      others_baseline_ms: base,
      others_episode_ms: during,
      flood_taken_ms: round(taken, 0),
      rss_before_mib: round(rssBefore / MiB, 1),
      rss_growth_max_mib: round((rssMax - rssBefore) / MiB, 1),
      rss_growth_since_round1_mib: round((rssMax - rssFirst) / MiB, 1),
      rss_after_mib: round(rssAfter / MiB, 1),
      victim_closed_by_server: victimClosedAt !== null && victimClosedAt < readUntil,
      victim_messages_read: victimGot,
      victim_stream_error: victimError,
      server_cpu_pct: m.server_cpu_pct,
      generator_cpu_pct: m.generator_cpu_pct,
      other_cpu_pct: m.other_cpu_pct,
    });
  }
  clearInterval(pacer);
  for (const c of [...conns, flooder]) c.close();
  await sleep(300);

  // the first round's figures at the top level, as before rounds existed
  const result = { ...rounds[0], flood_messages: o.messages, flood_body_bytes: o.bodySize, rounds };
  const summary = rounds
    .map(
      (x) =>
        `slowreader ${target.name} round ${x.round}: others p90 ${x.others_baseline_ms.p90} -> ${x.others_episode_ms.p90} ms (max ${x.others_episode_ms.max}), ` +
        `RSS +${x.rss_growth_max_mib} MiB at most (from ${x.rss_before_mib}; +${x.rss_growth_since_round1_mib} since round 1's start), ` +
        `${o.messages} x ${o.bodySize} B taken in ${x.flood_taken_ms} ms, ` +
        `slow client ${x.victim_closed_by_server ? 'cut by the server' : 'still connected'} (${x.victim_messages_read} messages read once it read again${x.victim_stream_error ? `, ${x.victim_stream_error.slice(0, 80)}` : ''})`,
    )
    .join('\n');
  return { result, summary };
}
