import pino, { type Logger } from 'pino';

export type { Logger };

/** Root logger for one server: JSON lines, or pretty when stdout is a terminal. */
export function createLogger(level: string, name = 'uzzap'): Logger {
  const pretty = process.stdout.isTTY && !process.env.UZZAP_LOG_JSON;
  return pino({
    name,
    level,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } } : {}),
  });
}
