/**
 * One gRPC watch stream shared by every watch of a connection, as etcd's own clients do: etcd tells the watches of
 * a stream apart by watch id. Opening a watch is one message on a stream that is already open, closing it one more,
 * where a stream per watch cost an HTTP/2 stream opened and reset each time (a lock held past its first 200 ms,
 * every wait for a lock or a claim). etcd answers the create requests of a stream in the order they were sent, so
 * each `created` response belongs to the oldest watch still waiting for one. When the stream fails, every watch on
 * it is told (`KeyWatch` resumes each from its own revision on the next stream); a watch etcd cancels (compaction)
 * is told alone.
 */
import type { IDuplexStream, IWatchCreateRequest, IWatchRequest, IWatchResponse } from 'etcd3';
import { closeStream } from './etcd-kv.js';

/** What a watch on the shared stream hears. */
export interface WatchListener {
  /** A response for this watch: `created` first, then events and progress, possibly a final `canceled`. */
  onResponse(response: IWatchResponse): void;
  /** The stream failed or ended; no more responses come for this watch. */
  onFailure(error: Error): void;
}

/** A watch on the shared stream. */
export interface HubWatch {
  /** Stops the watch (a cancel request once etcd named it); safe to call more than once. */
  close(): void;
}

interface Entry {
  readonly listener: WatchListener;
  id: string | undefined;
  closed: boolean;
}

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** The shared watch stream of one connection; `open` opens the underlying gRPC stream when it needs one. */
export class WatchHub {
  readonly #open: () => Promise<Stream>;
  #stream: Promise<Stream> | undefined;
  /** Watches whose create request was sent and not yet answered, oldest first. */
  #creating: Entry[] = [];
  #active = new Map<string, Entry>();

  constructor(open: () => Promise<Stream>) {
    this.#open = open;
  }

  /** Starts a watch; its responses go to `listener` until it closes, etcd cancels it or the stream fails. */
  watch(request: IWatchCreateRequest, listener: WatchListener): HubWatch {
    const entry: Entry = { listener, id: undefined, closed: false };
    const stream = this.#current();
    this.#creating.push(entry);
    stream.then(
      (opened) => {
        if (this.#stream === stream && this.#creating.includes(entry))
          opened.write({ create_request: request });
      },
      () => undefined, // #current() reports the failure to every watch
    );
    return {
      close: () => {
        if (entry.closed) return;
        entry.closed = true;
        if (entry.id === undefined) return; // cancelled as soon as etcd names it
        this.#active.delete(entry.id);
        this.#cancel(stream, entry.id);
      },
    };
  }

  /** Ends the stream; the watches on it are not told (the connection is closing). */
  close(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#creating = [];
    this.#active.clear();
    void stream?.then(closeStream, () => undefined);
  }

  #current(): Promise<Stream> {
    if (this.#stream !== undefined) return this.#stream;
    const stream = this.#open();
    this.#stream = stream;
    stream.then(
      (opened) => {
        opened.on('data', (response) => {
          if (this.#stream === stream) this.#route(stream, response);
        });
        opened.on('error', (error) => {
          this.#fail(stream, error);
        });
        opened.on('end', () => {
          this.#fail(stream, new Error('etcd ended the watch stream'));
        });
      },
      (error: unknown) => {
        this.#fail(stream, error instanceof Error ? error : new Error(String(error)));
      },
    );
    return stream;
  }

  #route(stream: Promise<Stream>, response: IWatchResponse): void {
    if (response.created) {
      const entry = this.#creating.shift();
      if (entry === undefined) return;
      entry.id = response.watch_id;
      if (entry.closed) {
        this.#cancel(stream, response.watch_id);
        return;
      }
      this.#active.set(response.watch_id, entry);
      entry.listener.onResponse(response);
      // etcd refuses a watch from a compacted revision by cancelling it right after creating it, in one response.
      if (response.canceled) this.#active.delete(response.watch_id);
      return;
    }
    const entry = this.#active.get(response.watch_id);
    if (entry === undefined) return; // a watch closed here; its cancel is on the way
    if (response.canceled) this.#active.delete(response.watch_id);
    entry.listener.onResponse(response);
  }

  #cancel(stream: Promise<Stream>, watchId: string): void {
    if (this.#stream !== stream) return;
    void stream.then(
      (opened) => {
        if (this.#stream === stream) opened.write({ cancel_request: { watch_id: watchId } });
      },
      () => undefined,
    );
  }

  #fail(stream: Promise<Stream>, error: Error): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    const told = [...this.#creating, ...this.#active.values()];
    this.#creating = [];
    this.#active.clear();
    void stream.then(closeStream, () => undefined);
    for (const entry of told) if (!entry.closed) entry.listener.onFailure(error);
  }
}
