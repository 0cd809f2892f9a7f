// The `uzzap` command: start the server, manage users, certificates, schema.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { loadConfig, ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import { openStorage, AccountExistsError, type Storage } from './storage/index.js';
import { Accounts, AccountInputError, usernameFor, checkPassword } from './accounts.js';
import { generateCert, loadOrCreateCert, trustCommand } from './tls.js';
import { Server, VERSION } from './server.js';
import { staleBuild } from './build-check.js';
import { createLogger } from './log.js';
import { dieWithNpm } from './server/lifeline.js';
import { createInvite, inviteUri, landingUrl, parseDuration } from '../xeps/0401-invites/invites.js';

class CliError extends Error {}

/** Where the server's HTTP listener is reached, as the invitation module says it (modules.invites.landing_base first). */
function webBaseOf(cfg: Config): string {
  const configured = (cfg.modules as Record<string, { landing_base?: string } | undefined>).invites?.landing_base;
  if (configured) return configured;
  return cfg.http.tls ? `https://${cfg.domain}:${cfg.http.tls_port}` : `http://${cfg.domain}:${cfg.http.port}`;
}

function config(opts: { config?: string }): Config {
  return loadConfig({ file: opts.config }).config;
}

async function withStorage<T>(cfg: Config, fn: (s: Storage, a: Accounts) => Promise<T>): Promise<T> {
  let storage: Storage;
  try {
    storage = await openStorage({
      postgresUrl: cfg.postgres_url || undefined,
      dataDir: cfg.data_dir,
      sqliteBusyTimeout: cfg.storage.sqlite_busy_timeout,
      postgresPool: 4,
    });
  } catch (e) {
    throw new CliError(
      `cannot open storage (${cfg.postgres_url ? 'Postgres at UZZAP_POSTGRES_URL' : `SQLite in ${cfg.data_dir}`}): ${(e as Error).message}`,
    );
  }
  try {
    return await fn(storage, new Accounts(storage, () => cfg.sasl.scram_iterations));
  } finally {
    await storage.close();
  }
}

/** With Redis configured, the running nodes end the user's sessions (they hold the old password or a deleted account). */
async function endEverywhere(cfg: Config, username: string, condition: 'not-authorized' | 'reset', text: string): Promise<void> {
  if (!cfg.redis_url) return;
  const { endUserSessions } = await import('./cluster/cluster.js');
  await endUserSessions(cfg.redis_url, `uzzap:${cfg.domain}:`, `${username}@${cfg.domain}`, condition, text).catch((e: unknown) =>
    console.error(`warning: could not tell the running nodes to end the sessions: ${(e as Error).message}`),
  );
}

export function cli(): Command {
  const program = new Command('uzzap').description('Uzzap XMPP server').version(VERSION);
  const cfgOpt = new Option('-c, --config <file>', 'configuration file (default: ./uzzap.yaml if present)');

  program
    .command('start', { isDefault: true })
    .description('run the server in the foreground')
    .addOption(cfgOpt)
    .option('--workers <n>', 'worker processes sharing the ports, each a node of the cluster ("auto": one per CPU; needs UZZAP_REDIS_URL)')
    .action(async (opts: { config?: string; workers?: string }) => {
      // run by `npm start`: a SIGKILL of npm kills the server (and its workers) too
      dieWithNpm();
      if (opts.workers !== undefined) process.env.UZZAP_WORKERS = opts.workers;
      const workers = await import('./cluster/workers.js');
      if (!workers.isWorker()) {
        const cfg = config(opts);
        const n = workers.workerCount(cfg.workers);
        if (n > 1) {
          const log = createLogger(cfg.log_level);
          try {
            // the schema and the certificate once, before the workers would race for them
            await workers.runPrimary(cfg, n, log, async () => {
              await withStorage(cfg, async () => undefined);
              await loadOrCreateCert(cfg.domain, cfg.tls, log);
            });
          } catch (e) {
            throw new CliError((e as Error).message);
          }
          process.exit(0);
        }
      }
      const server = Server.fromEnvironment(opts.config);
      const stale = staleBuild(fileURLToPath(new URL('../..', import.meta.url)));
      if (stale) server.log.warn(stale);
      let stopping = false;
      const stop = (sig: string): void => {
        if (stopping) return;
        stopping = true;
        server.log.info({ signal: sig }, 'stopping');
        const force = setTimeout(() => process.exit(1), 20_000);
        force.unref();
        server.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            server.log.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      server.onShutdownRequest = () => stop('admin#shutdown');
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => {
        server
          .reload()
          .catch((err: unknown) => server.log.error({ err: (err as Error).message }, 'reload failed; keeping the running configuration'));
      });
      await server.start();
    });

  program
    .command('invite')
    .description('make an invitation link (XEP-0401): registration with it works while registration is closed')
    .option('--admin', 'the account made with it is a server administrator')
    .option('--expires <duration>', 'how long it is valid: 30m, 12h, 7d, 2w', '7d')
    .option('--uses <n>', 'accounts it can make', '1')
    .option('--username <name>', 'the only username it registers')
    .option('--contact <jid>', 'a contact invitation from this local user: the new account and the user are subscribed to each other')
    .addOption(cfgOpt)
    .action(async (opts: { config?: string; admin?: boolean; expires: string; uses: string; username?: string; contact?: string }) => {
      const cfg = config(opts);
      const ttl = parseDuration(opts.expires);
      if (ttl === undefined) throw new CliError(`--expires: expected a duration such as 7d, 12h or 30m (got "${opts.expires}")`);
      const uses = Number(opts.uses);
      if (!Number.isInteger(uses) || uses < 1) throw new CliError(`--uses: expected a whole number of at least 1 (got "${opts.uses}")`);
      const username = opts.username === undefined ? undefined : usernameFor(opts.username, cfg.domain);
      const inviter = opts.contact === undefined ? '' : usernameFor(opts.contact, cfg.domain);
      // a contact invitation's URI names the inviter, not the invitee: it cannot also fix the username
      if (inviter && username) throw new CliError('--contact and --username do not go together');
      const made = await withStorage(cfg, async (s) => {
        if (inviter && !(await s.accounts.get(inviter))) throw new CliError(`no such user: ${inviter}@${cfg.domain}`);
        return createInvite(s, { kind: inviter ? 'contact' : 'account', inviter, username, admin: !!opts.admin, register: true, uses, ttl });
      });
      console.log(landingUrl(webBaseOf(cfg), made.token));
      console.log(inviteUri(cfg.domain, made.invite, made.token));
      console.log(`valid until ${new Date(made.invite.expiresAt).toISOString()}, ${uses} use${uses === 1 ? '' : 's'}`);
    });

  const user = program.command('user').description('manage accounts (works while the server runs)');
  user
    .command('add <jid> <password>')
    .addOption(cfgOpt)
    .action(async (jid: string, password: string, opts: { config?: string }) => {
      const cfg = config(opts);
      const username = usernameFor(jid, cfg.domain);
      checkPassword(password);
      await withStorage(cfg, (_s, a) => a.create(username, password));
      console.log(`created ${username}@${cfg.domain}`);
    });
  user
    .command('del <jid>')
    .addOption(cfgOpt)
    .action(async (jid: string, opts: { config?: string }) => {
      const cfg = config(opts);
      const username = usernameFor(jid, cfg.domain);
      // the same path as the admin command and in-band cancel: the modules' deletion hooks
      // remove the archive, room affiliations, roster entries elsewhere and push registrations
      const node = await new Server({ config: cfg, log: createLogger(cfg.log_level === 'info' ? 'warn' : cfg.log_level) })
        .openForAdministration()
        .catch((e: unknown) => {
          throw new CliError(`cannot open the server's data: ${(e as Error).message}`);
        });
      let deleted: boolean;
      try {
        deleted = await node.accounts.delete(username);
      } finally {
        await node.stop();
      }
      if (!deleted) throw new CliError(`no such user: ${username}@${cfg.domain}`);
      await endEverywhere(cfg, username, 'not-authorized', 'account deleted');
      console.log(`deleted ${username}@${cfg.domain}`);
    });
  user
    .command('passwd <jid> <password>')
    .addOption(cfgOpt)
    .action(async (jid: string, password: string, opts: { config?: string }) => {
      const cfg = config(opts);
      const username = usernameFor(jid, cfg.domain);
      if (!(await withStorage(cfg, (_s, a) => a.setPassword(username, password))))
        throw new CliError(`no such user: ${username}@${cfg.domain}`);
      await endEverywhere(cfg, username, 'reset', 'the password was changed');
      console.log(`password changed for ${username}@${cfg.domain}`);
    });
  user
    .command('admin <jid>')
    .description('flag an account as server admin (--off: unflag); a running server picks it up on reload (SIGHUP)')
    .option('--off', 'remove the flag')
    .addOption(cfgOpt)
    .action(async (jid: string, opts: { config?: string; off?: boolean }) => {
      const cfg = config(opts);
      const username = usernameFor(jid, cfg.domain);
      if (!(await withStorage(cfg, (s) => s.accounts.setAdmin(username, !opts.off))))
        throw new CliError(`no such user: ${username}@${cfg.domain}`);
      console.log(`${username}@${cfg.domain} is ${opts.off ? 'no longer' : 'now'} an admin`);
    });
  user
    .command('list')
    .addOption(cfgOpt)
    .action(async (opts: { config?: string }) => {
      const cfg = config(opts);
      await withStorage(cfg, async (s) => {
        let after = '';
        for (;;) {
          const page = await s.accounts.list({ after, limit: 1000 });
          for (const u of page) console.log(`${u}@${cfg.domain}`);
          if (page.length < 1000) break;
          after = page[page.length - 1]!;
        }
      });
    });
  user
    .command('add-bulk <file>')
    .description('create accounts from lines "jid password" (existing ones are skipped)')
    .addOption(cfgOpt)
    .action(async (file: string, opts: { config?: string }) => {
      const cfg = config(opts);
      const entries: { username: string; password: string }[] = [];
      const problems: string[] = [];
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const t = line.trim();
          if (!t || t.startsWith('#')) return;
          const m = /^(\S+)\s+(.+)$/.exec(t);
          if (!m) return void problems.push(`line ${i + 1}: expected "jid password"`);
          try {
            checkPassword(m[2]!);
            entries.push({ username: usernameFor(m[1]!, cfg.domain), password: m[2]! });
          } catch (e) {
            problems.push(`line ${i + 1}: ${(e as Error).message}`);
          }
        });
      if (problems.length) throw new CliError(`${file} has errors, nothing was created:\n  ${problems.join('\n  ')}`);
      const t0 = Date.now();
      const r = await withStorage(cfg, (_s, a) => a.createMany(entries));
      console.log(
        `created ${r.created} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s` +
          (r.skipped.length ? `, skipped ${r.skipped.length} existing` : ''),
      );
    });

  program
    .command('status')
    .description('print a live summary of a running server (GET /status on its HTTP port)')
    .addOption(cfgOpt)
    .option('--url <url>', "the server's HTTP address (default: http://127.0.0.1:<http.port>)")
    .option('--token <token>', 'bearer token (default: http.status_token / UZZAP_HTTP_STATUS_TOKEN)')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { config?: string; url?: string; token?: string; json?: boolean }) => {
      const cfg = config(opts);
      const base = opts.url ?? `http://127.0.0.1:${cfg.http.port}`;
      const token = opts.token ?? cfg.http.status_token;
      let res: Response;
      try {
        res = await fetch(new URL('/status', base), { headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (e) {
        throw new CliError(
          `cannot reach ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
        );
      }
      if (!res.ok) throw new CliError(`${base}/status answered ${res.status}: ${(await res.text()).trim()}`);
      const st = (await res.json()) as import('./api/module.js').ServerStats & { domain: string; modules: string[] };
      if (opts.json) return void console.log(JSON.stringify(st, null, 2));
      const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;
      const lines = [
        `Uzzap ${st.version} serving ${st.domain} (node ${st.node}), up ${duration(st.uptimeSeconds)}`,
        `sessions     ${st.sessions} bound (${st.detachedSessions} detached, waiting to resume), ${st.connections} connections`,
        `components   ${st.components.length ? st.components.join(', ') : 'none'}`,
        `stanzas/s    ${st.stanzasInPerSecond} in, ${st.stanzasOutPerSecond} out (last 10 s)`,
        `memory       ${mb(st.rssBytes)} RSS, ${mb(st.heapUsedBytes)} heap`,
        `event loop   lag ${st.eventLoopLagMs.mean} ms mean, ${st.eventLoopLagMs.p99} ms p99`,
        `storage      ${st.storage.kind}, ${st.storage.latencyMs === null ? 'NOT RESPONDING' : `${st.storage.latencyMs} ms round-trip`}`,
        `registry     ${st.registry.kind}, ${st.registry.latencyMs === null ? 'NOT RESPONDING' : `${st.registry.latencyMs} ms round-trip`}`,
        ...Object.entries(st.extra).map(([k, v]) => `${k.padEnd(12)} ${v}`),
        `modules      ${st.modules.join(' ')}`,
      ];
      if (st.cluster) {
        lines.push(`cluster      ${st.cluster.length} node${st.cluster.length === 1 ? '' : 's'}`);
        lines.push('  node                          host              sessions  in/s     out/s    lag p99  heartbeat');
        for (const n of st.cluster)
          lines.push(
            `  ${n.name.padEnd(30)}${n.host.slice(0, 16).padEnd(18)}${String(n.sessions).padEnd(10)}${String(n.stanzasInPerSecond).padEnd(9)}${String(n.stanzasOutPerSecond).padEnd(9)}${`${n.eventLoopLagMs.p99} ms`.padEnd(9)}${(n.heartbeatAgeMs / 1000).toFixed(1)} s ago`,
          );
      }
      console.log(lines.join('\n'));
    });

  program
    .command('cert')
    .description('issue a new server certificate in ./certs, signed by the local CA (created if absent)')
    .option('--new-key', 'also replace the server key (clients that pin it, e.g. Poezio, will ask again)')
    .option('--new-ca', 'also replace the local CA (every machine must then trust the new one)')
    .addOption(cfgOpt)
    .action(async (opts: { config?: string; newKey?: boolean; newCa?: boolean }) => {
      const cfg = config(opts);
      const files = await generateCert(cfg.domain, undefined, { newKey: opts.newKey, newCa: opts.newCa });
      console.log(`wrote ${files.cert} and ${files.key} for ${files.names.join(', ')}`);
      console.log(`signed by the ${files.caCreated ? 'new ' : ''}local CA ${files.ca}; to make this machine trust it, run:`);
      console.log(`  ${trustCommand(files.ca)}`);
      if (cfg.tls.cert) console.log(`note: tls.cert is set (${cfg.tls.cert}), so the server uses that file instead`);
      else console.log('restart the server to use it');
    });

  program
    .command('migrate')
    .description('apply database migrations and exit')
    .addOption(cfgOpt)
    .action(async (opts: { config?: string }) => {
      await withStorage(config(opts), async () => undefined);
      console.log('schema up to date');
    });

  return program;
}

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await cli().parseAsync(argv);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CliError || e instanceof AccountInputError) {
      console.error(`uzzap: ${e.message}`);
    } else if (e instanceof AccountExistsError) {
      console.error(`uzzap: user ${e.username} already exists`);
    } else {
      console.error('uzzap:', e);
    }
    process.exit(1);
  }
}

await main();
