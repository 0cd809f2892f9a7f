// A delaying TCP proxy on loopback, run as a child process (so its CPU is not the
// generator's): every chunk read from either side is written to the other side
// `delay` ms later, in order; a FIN or a reset is passed on the same way, after the
// data before it. With 50 ms each way a round trip through it takes 100 ms more.
// Only the data is delayed: the TCP handshake with the proxy is local (instant).
//
//   node bench/lib/delay-proxy.mjs <upstream host> <upstream port> <delay ms>
// listens on 127.0.0.1:<free port> and prints {"port":P} on stdout when ready;
// exits when its stdin closes (the parent went away) or on SIGTERM.
//
// startDelayProxy() starts one from the bench and resolves with { port, pid, stop }.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One direction: chunks leave `delay` ms after they came, in arrival order. */
function pipeDelayed(from, to, delay) {
  const q = []; // { due, chunk } | { due, end: 'fin' | 'reset' }
  let timer = null;
  let done = false;
  const flush = () => {
    timer = null;
    const now = performance.now();
    while (q.length && q[0].due <= now + 0.5) {
      const x = q.shift();
      if (done) continue;
      if (x.chunk) to.write(x.chunk);
      else {
        done = true;
        if (x.end === 'fin') to.end();
        else to.destroy();
      }
    }
    if (q.length) timer = setTimeout(flush, Math.max(0, q[0].due - performance.now()));
  };
  const push = (x) => {
    x.due = performance.now() + delay;
    q.push(x);
    if (!timer) timer = setTimeout(flush, delay);
  };
  from.on('data', (chunk) => push({ chunk }));
  from.on('end', () => push({ end: 'fin' }));
  from.on('error', () => {}); // 'close' follows
  from.on('close', (hadError) => {
    if (hadError || !from.readableEnded) push({ end: 'reset' });
  });
}

export function runProxy(upHost, upPort, delay) {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    client.pause();
    const up = net.connect({ host: upHost, port: upPort, allowHalfOpen: true, noDelay: true });
    up.on('error', () => {});
    client.on('error', () => {});
    pipeDelayed(client, up, delay);
    pipeDelayed(up, client, delay);
    up.once('connect', () => client.resume());
    // a side fully closed after both FINs: nothing more to do (the sockets close themselves)
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

/** Start the proxy as a child of this process; resolves with { port, pid, stop() }. */
export function startDelayProxy(upHost, upPort, delay) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), upHost, String(upPort), String(delay)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    const fail = (e) => reject(e instanceof Error ? e : new Error(`delay proxy exited (${e})`));
    child.once('error', fail);
    child.once('exit', fail);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.off('exit', fail);
      const { port } = JSON.parse(out.slice(0, nl));
      resolve({
        port,
        pid: child.pid,
        stop: () =>
          new Promise((r) => {
            if (child.exitCode != null || child.signalCode != null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [host, port, delay] = process.argv.slice(2);
  runProxy(host, Number(port), Number(delay));
}
