// Helpers the pair workloads (chat, slowreader) share: logging in 2P users, and
// an open-loop pacer that sends `rate` messages/s round robin over the pairs and
// both directions.
import { pool } from './proc.mjs';

/**
 * Log in users 1..2P (resource 'chat', initial presence); conns[2p] and conns[2p+1] are pair p.
 * `sm`: each enables XEP-0198 with resumption (and answers the server's ack requests), as phones do.
 */
export async function loginPairs(newConn, pairs, concurrency, sm = false) {
  const conns = new Array(2 * pairs);
  await pool(2 * pairs, concurrency, async (i) => {
    const c = newConn(i + 1);
    await c.login({ presence: true, roster: false, resource: 'chat', ...(sm ? { sm: 'resume' } : {}) });
    conns[i] = c;
  });
  return conns;
}

/**
 * Every 10 ms, send what `rate` messages/s owe since the start: send(from, to) for the
 * next pair in turn, alternating direction each round. Returns the timer (clearInterval).
 */
export function openLoop(conns, pairs, rate, send) {
  const t0 = performance.now();
  let next = 0;
  return setInterval(() => {
    const owed = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; next < owed; next++) {
      const p = next % pairs;
      const flip = Math.floor(next / pairs) % 2;
      send(conns[2 * p + flip], conns[2 * p + 1 - flip]);
    }
  }, 10);
}
