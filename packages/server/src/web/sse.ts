/**
 * Server-Sent Events written straight to Node's response, in the bytes better-sse wrote before (its headers,
 * `retry:2000`, `event:` `id:` `data:` fields, `:` keep-alives). better-sse's Node adapter built a Fetch `Request`
 * and `Response`, a URL and an AbortController for every connection and flushed every event on its own; with 200
 * clients that per-connection work was most of the stream's cost (about 650 µs of CPU per connection of four
 * events against about 250 µs written here), and nothing of it was used.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The headers of an event stream: no caching, no buffering by proxies. */
const HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'private, no-cache, no-store, no-transform, must-revalidate, max-age=0',
  Connection: 'keep-alive',
  Pragma: 'no-cache',
  'X-Accel-Buffering': 'no',
} as const;

/** A field value on one line: a line break inside would end the field early. */
const oneLine = (value: string): string => (/[\r\n]/.test(value) ? value.replace(/[\r\n]+/g, ' ') : value);

/** One event as it goes on the wire; `data` is sent as JSON (which never holds a raw line break). */
export function sseEvent(type: string, id: string, data: unknown): string {
  return `event:${oneLine(type)}\nid:${oneLine(id)}\ndata:${JSON.stringify(data)}\n\n`;
}

/** An open event stream to one client. */
export interface EventStream {
  /** The Last-Event-ID the client sent (header, else the `lastEventId` query parameter), or ''. */
  readonly lastEventId: string;
  /**
   * Sends `chunk` (encoded events, possibly none) in one write. The first call sends the headers and the retry
   * hint with it, so that a request that fails before it can still answer with a problem.
   */
  send(chunk: string): void;
  /** Sends `chunk` and ends the response. */
  end(chunk?: string): void;
}

/** Options of `openEventStream`. */
export interface EventStreamOptions {
  /** The reconnection delay suggested to the client. */
  readonly retryMs: number;
  /** How often an idle stream sends a comment, so that proxies keep it open. */
  readonly keepAliveMs: number;
}

/** Prepares an event stream on `res`; nothing is written before the first `send`. */
export function openEventStream(
  req: IncomingMessage,
  res: ServerResponse,
  options: EventStreamOptions,
): EventStream {
  const header = req.headers['last-event-id'];
  const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
  const lastEventId =
    (Array.isArray(header) ? header[0] : header) ??
    query.get('lastEventId') ??
    query.get('evs_last_event_id') ??
    '';
  let keepAlive: NodeJS.Timeout | undefined;
  let started = false;
  res.once('close', () => {
    clearInterval(keepAlive);
  });
  const start = (): string => {
    if (started) return '';
    started = true;
    res.socket?.setNoDelay(true);
    res.writeHead(200, HEADERS);
    keepAlive = setInterval(() => {
      res.write(':\n\n');
    }, options.keepAliveMs);
    return `retry:${String(options.retryMs)}\n\n`;
  };
  return {
    lastEventId,
    send: (chunk) => {
      // Checked before `start`: a client gone before the first write must not leave a keep-alive timer behind.
      if (res.writableEnded || res.destroyed) return;
      const all = start() + chunk;
      if (all !== '') res.write(all);
    },
    end: (chunk = '') => {
      if (res.writableEnded || res.destroyed) return;
      res.end(start() + chunk);
    },
  };
}
