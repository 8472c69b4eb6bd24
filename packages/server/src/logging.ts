/** Structured logs with winston: JSON in production (or when not on a terminal), readable lines on a terminal. */
import type { Logger } from '@consortium/core';
import winston from 'winston';
import type { Config } from './config.js';

/** Makes the process logger; logs go to stderr so stdout stays for what scripts read. */
export function createLogger(
  config: Config['log'],
  stream: NodeJS.WriteStream = process.stderr,
): winston.Logger {
  const json = config.format === 'json' || (config.format === 'auto' && !stream.isTTY);
  const format = json
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
        winston.format.colorize(),
        winston.format.printf((info) => {
          const { level, message, timestamp, ...meta } = info;
          const extra = Object.keys(meta).length > 0 ? ` ${JSON.stringify(meta)}` : '';
          return `${String(timestamp)} ${level} ${String(message)}${extra}`;
        }),
      );
  return winston.createLogger({
    level: config.level,
    format,
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston types its transports loosely
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

/** Narrows a winston logger to the provider-facing `Logger`, with fixed fields on every line. */
export function childLogger(logger: winston.Logger, fields: Record<string, unknown>): Logger {
  return logger.child(fields);
}
