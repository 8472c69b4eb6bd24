/**
 * One SSH connection per hypervisor (ssh2), opened on first use, verified against the configured host key, shared
 * by every command and reopened after it drops. SSH errors are translated here: a connection that cannot be made
 * or is lost is `BackendUnavailableError` (retryable); a wrong host key or refused credentials are `BackendError`
 * (retrying cannot help). The private key is never logged or put into a message.
 */
import { connect as tcpConnect } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { Socket } from 'node:net';
import type { Logger } from '@consortium/plugin-api';
import { BackendError, BackendUnavailableError, CancelledError } from '@consortium/plugin-api';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { Client } from 'ssh2';
import type { ExpectedHostKey } from './host-key.js';
import { fingerprintOf, keyTypeOf } from './host-key.js';

/** The result of one remote command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of one remote command. */
export interface ExecOptions {
  /** Written to the command's standard input, which is then closed. */
  readonly stdin?: string;
  readonly signal: AbortSignal;
  /** Longest the command may take once the connection is up. */
  readonly timeoutMs: number;
}

/** What a long-lived command (`RemoteShell.open`) reports: its output as it comes, and its end. */
export interface ChannelHandlers {
  /** Standard output (and whatever the command line sends there) as it arrives, decoded as UTF-8. */
  onData(text: string): void;
  /** Once, when the command ends or the connection drops; `code` is its exit status when it exited. */
  onClose(code: number | undefined): void;
}

/** A long-lived command on the remote machine, its standard input open for writing. */
export interface RemoteChannel {
  /** Writes to the command's standard input. */
  write(text: string): void;
  /** Ends the command: closes its standard input and the channel. */
  close(): void;
}

/** Runs commands on one machine; `SshSession` over SSH, or anything else that can (for tests). */
export interface RemoteShell {
  /** Who and where, for messages: `consortium@hv-1.example.com:22`. */
  readonly address: string;
  /** Runs a command line in the remote user's shell; throws `BackendUnavailableError` or `BackendError`. */
  exec(command: string, options: ExecOptions): Promise<CommandResult>;
  /**
   * Starts a command that stays running (an interactive `virsh`, `virsh event --loop`) on the shared connection;
   * it does not count against the commands run at once. Absent: every command is an `exec`.
   */
  open?(command: string, handlers: ChannelHandlers, signal: AbortSignal): Promise<RemoteChannel>;
  /** Keeps the connection up (and the process alive) until the returned release is called. */
  hold?(): () => void;
  /** Closes the connection; the next command opens a new one. */
  close(): void;
}

/** How to reach one hypervisor. */
export interface SshSessionOptions {
  /** The hypervisor's name in Consortium, for messages. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** An OpenSSH or PEM private key (never logged). */
  readonly privateKey: string;
  readonly hostKey: ExpectedHostKey;
  /** Longest the TCP connect and SSH handshake may take together. */
  readonly connectTimeoutMs: number;
  /** An idle connection is closed after this long. */
  readonly idleMs: number;
  /** Commands run at once on the connection (sshd's MaxSessions is 10 by default). */
  readonly maxChannels: number;
  readonly logger: Logger;
}

/** Socket error codes that mean the machine or its sshd cannot be reached right now. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

interface Connection {
  readonly client: Client;
  readonly socket: Socket;
}

/** An SSH connection to one hypervisor, shared by its commands. */
export class SshSession implements RemoteShell {
  readonly address: string;
  private connection: Promise<Connection> | undefined;
  private inflight = 0;
  /** Users of the connection besides exec channels (`hold`): it is neither idle nor unreferenced while any. */
  private holds = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly waiting: (() => void)[] = [];

  /** Makes a session; nothing connects until the first command. */
  constructor(private readonly options: SshSessionOptions) {
    this.address = `${options.user}@${options.host}:${options.port}`;
  }

  /** Runs a command line; see `RemoteShell.exec`. Throws `CancelledError` when `signal` aborts. */
  async exec(command: string, options: ExecOptions): Promise<CommandResult> {
    if (options.signal.aborted) throw this.cancelled();
    clearTimeout(this.idleTimer);
    await this.acquire(options.signal);
    try {
      const { client } = await this.connected(options.signal);
      return await this.run(client, command, options);
    } finally {
      this.release();
    }
  }

  /** Closes the connection now. */
  close(): void {
    const connection = this.connection;
    this.connection = undefined;
    clearTimeout(this.idleTimer);
    void connection?.then(
      ({ client }) => client.end(),
      () => undefined,
    );
  }

  private cancelled(): CancelledError {
    return new CancelledError(`hypervisor ${this.options.name}: cancelled`);
  }

  private async acquire(signal: AbortSignal): Promise<void> {
    while (this.inflight >= this.options.maxChannels) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (signal.aborted) throw this.cancelled();
    }
    this.inflight++;
    this.busy();
  }

  private release(): void {
    this.inflight--;
    this.waiting.shift()?.();
    this.quiet();
  }

  /** Keeps the connection up and referenced until the returned function is called (once). */
  hold(): () => void {
    this.holds++;
    this.busy();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.quiet();
    };
  }

  private busy(): void {
    clearTimeout(this.idleTimer);
    void this.connection?.then(
      ({ socket }) => socket.ref(),
      () => undefined,
    );
  }

  private quiet(): void {
    if (this.inflight > 0 || this.holds > 0) return;
    // An idle connection must not keep the process alive, and is closed after a while.
    void this.connection?.then(
      ({ socket }) => socket.unref(),
      () => undefined,
    );
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.inflight === 0 && this.holds === 0) this.close();
    }, this.options.idleMs);
    this.idleTimer.unref();
  }

  /**
   * Starts a long-lived command on the shared connection (see `RemoteShell.open`). Its output is merged into one
   * stream by the command line itself (`2>&1`) where order matters.
   */
  async open(command: string, handlers: ChannelHandlers, signal: AbortSignal): Promise<RemoteChannel> {
    if (signal.aborted) throw this.cancelled();
    const release = this.hold();
    try {
      const { client } = await this.connected(signal);
      return await new Promise<RemoteChannel>((resolve, reject) => {
        client.exec(command, (error, stream) => {
          if (error !== undefined) {
            reject(this.unavailable(`refused to run a command: ${error.message}`, error));
            return;
          }
          const decoder = new StringDecoder('utf8');
          let code: number | undefined;
          let closed = false;
          const end = (): void => {
            if (closed) return;
            closed = true;
            client.removeListener('close', end);
            handlers.onClose(code);
          };
          // A dropped connection may not close its channels one by one.
          client.once('close', end);
          stream.on('data', (chunk: Buffer) => {
            handlers.onData(decoder.write(chunk));
          });
          stream.stderr.on('data', (chunk: Buffer) => {
            handlers.onData(decoder.write(chunk));
          });
          stream.on('exit', (exitCode: number | null) => {
            code = exitCode ?? 255;
          });
          stream.on('close', end);
          resolve({
            write: (text) => {
              if (!closed) stream.write(text);
            },
            close: () => {
              if (!closed) stream.end();
              stream.close();
            },
          });
        });
      });
    } finally {
      release();
    }
  }

  /** The shared connection, opened if needed; a cancelled caller stops waiting, the attempt goes on for others. */
  private async connected(signal: AbortSignal): Promise<Connection> {
    if (this.connection === undefined) {
      const attempt = this.connect();
      this.connection = attempt;
      attempt.catch(() => {
        if (this.connection === attempt) this.connection = undefined;
      });
    }
    const connection = this.connection;
    if (signal.aborted) throw this.cancelled();
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        reject(this.cancelled());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([connection, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The retryable error for a hypervisor that cannot be reached or dropped the connection. */
  unavailable(what: string, cause?: unknown): BackendUnavailableError {
    return new BackendUnavailableError(`hypervisor ${this.options.name} (ssh ${this.address}) ${what}`, {
      cause,
      details: { hypervisor: this.options.name },
    });
  }

  /** Opens the TCP connection and the SSH session on it; rejects with a translated error. */
  private connect(): Promise<Connection> {
    const { host, port, connectTimeoutMs } = this.options;
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      let presented: Buffer | undefined;
      const client = new Client();
      // Every running command listens for the connection to drop.
      client.setMaxListeners(0);
      const socket = tcpConnect({ host, port });
      // Commands are small request/response exchanges; Nagle's algorithm with delayed ACKs adds ~40 ms to each.
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 15_000);
      const finish = (error: Error | undefined, connection?: Connection): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined && connection !== undefined) resolve(connection);
        else {
          client.end();
          socket.destroy();
          reject(error ?? new Error('connection failed'));
        }
      };
      const timer = setTimeout(() => {
        finish(this.unavailable(`did not complete the SSH handshake within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);

      socket.once('error', (error: NodeJS.ErrnoException) => {
        finish(this.unavailable(`is unreachable: ${error.message}`, error));
      });
      socket.once('connect', () => {
        const config: ConnectConfig = {
          sock: socket,
          username: this.options.user,
          privateKey: this.options.privateKey,
          readyTimeout: connectTimeoutMs,
          // ssh2's keepalive timer would keep the process alive while the connection idles; TCP keepalive and
          // the command timeout find a dead peer instead.
          keepaliveInterval: 0,
          hostVerifier: (key: Buffer) => {
            presented = key;
            return this.options.hostKey.matches(key);
          },
        };
        const algorithms = this.options.hostKey.algorithms;
        if (algorithms !== undefined) {
          config.algorithms = { serverHostKey: [...algorithms] as never };
        }
        client.connect(config);
      });
      client.once('ready', () => {
        // From now on errors end this connection and the next command opens another one.
        client.on('error', (error) => {
          this.options.logger.warn('libvirt: SSH connection failed', {
            hypervisor: this.options.name,
            error: error.message,
          });
        });
        client.once('close', () => {
          if (this.connection !== undefined) {
            void this.connection.then((c) => {
              if (c.client === client) this.connection = undefined;
            });
          }
        });
        finish(undefined, { client, socket });
      });
      client.on('error', (error: Error & { level?: string }) => {
        if (presented !== undefined && !this.options.hostKey.matches(presented)) {
          finish(
            new BackendError(
              `hypervisor ${this.options.name} (ssh ${this.address}) presented the host key ` +
                `${keyTypeOf(presented) ?? 'unknown'} ${fingerprintOf(presented)}, not the configured ` +
                `${this.options.hostKey.fingerprint}; if the hypervisor was reinstalled, check and update hostKey`,
              { details: { hypervisor: this.options.name } },
            ),
          );
        } else if (error.level === 'client-authentication') {
          finish(
            new BackendError(
              `hypervisor ${this.options.name} (ssh ${this.address}) refused the key: ${error.message}; check ` +
                `the user and that the public key is in its authorized_keys`,
              { details: { hypervisor: this.options.name } },
            ),
          );
        } else {
          const code = (error as NodeJS.ErrnoException).code;
          const reachable = code === undefined || !UNREACHABLE.has(code);
          finish(
            this.unavailable(
              `${reachable ? 'failed the SSH handshake' : 'is unreachable'}: ${error.message}`,
              error,
            ),
          );
        }
      });
      client.once('close', () => {
        finish(this.unavailable('closed the connection during the SSH handshake'));
      });
    });
  }

  private run(client: Client, command: string, options: ExecOptions): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      let channel: ClientChannel | undefined;
      let settled = false;
      const finish = (error: Error | undefined, result?: CommandResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
        if (error !== undefined) {
          channel?.close();
          reject(error);
        } else resolve(result as CommandResult);
      };
      const onAbort = (): void => {
        finish(this.cancelled());
      };
      if (options.signal.aborted) {
        reject(this.cancelled());
        return;
      }
      options.signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        finish(this.unavailable(`did not finish a command within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      const lost = (): void => {
        finish(this.unavailable('dropped the connection while a command ran'));
      };
      client.once('close', lost);
      client.exec(command, (error, stream) => {
        if (error !== undefined) {
          client.removeListener('close', lost);
          finish(this.unavailable(`refused to run a command: ${error.message}`, error));
          return;
        }
        channel = stream;
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | undefined;
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        // A command killed by a signal reports no code; count it as a failure like a shell does.
        stream.on('exit', (exitCode: number | null) => {
          code = exitCode ?? 255;
        });
        stream.on('close', () => {
          client.removeListener('close', lost);
          if (code === undefined) {
            lost();
            return;
          }
          finish(undefined, {
            code,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
          });
        });
        stream.end(options.stdin);
      });
    });
  }
}
