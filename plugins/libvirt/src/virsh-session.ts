/**
 * A long-lived interactive `virsh` on one hypervisor, over one channel of the shared SSH connection: one libvirt
 * connection for every read and write instead of an SSH channel, a shell and a virsh process (with its own libvirtd
 * connection) per command. Commands are written one per line, each followed by an `echo` of a marker; the text
 * up to the marker's output is that command's answer (virsh's errors are merged into it with `2>&1`, in order).
 * Commands may be written while earlier ones run (answers come back in order). And `virsh event --all --loop` on
 * another channel: the names of domains that changed, for the provider's placement view.
 */
import { randomBytes } from 'node:crypto';
import { BackendUnavailableError, CancelledError } from '@consortium/plugin-api';
import type { CommandResult, RemoteChannel, RemoteShell } from './ssh-session.js';

/** A remote shell that can run long-lived commands. */
export type ChannelShell = RemoteShell & Required<Pick<RemoteShell, 'open'>>;

/** True when `shell` can keep a virsh session open. */
export function canOpen(shell: RemoteShell): shell is ChannelShell {
  return typeof shell.open === 'function';
}

interface Pending {
  readonly line: string;
  /** What virsh prints for the marker `echo` after this command: its answer ends there. */
  readonly marker: string;
  /** The `echo` line that prints the marker. */
  readonly markerCommand: string;
  readonly resolve: (result: CommandResult) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly release: () => void;
  settled: boolean;
}

/** The prompt interactive virsh prints before reading each line (also when its input is not a terminal). */
const PROMPT = 'virsh # ';

/**
 * Splits one command's answer into virsh's output and its error lines (`error: ...`); the prompt and the echo of
 * the command line that virsh prints around it are dropped.
 */
export function answerOf(chunk: string, line: string, markerCommand: string): CommandResult {
  let text = chunk;
  const tail = `${markerCommand}\n`;
  if (text.endsWith(tail)) text = text.slice(0, -tail.length);
  if (text.endsWith(PROMPT)) text = text.slice(0, -PROMPT.length);
  if (text.startsWith(PROMPT)) text = text.slice(PROMPT.length);
  if (text.startsWith(`${line}\n`)) text = text.slice(line.length + 1);
  const lines = text.split('\n');
  const errors = lines.filter((l) => l.startsWith('error: '));
  const output = lines.filter((l) => !l.startsWith('error: ')).join('\n');
  return { code: errors.length > 0 ? 1 : 0, stdout: output, stderr: errors.map((l) => `${l}\n`).join('') };
}

/** One interactive virsh over a channel, opened on first use and again after it ends. */
export class VirshSession {
  private channel: Promise<RemoteChannel> | undefined;
  private readonly pending: Pending[] = [];
  private buffer = '';
  private readonly token = randomBytes(6).toString('hex');
  private sequence = 0;

  /** `command` starts virsh interactively with its errors on standard output (`... 2>&1`). */
  constructor(
    private readonly hypervisor: string,
    private readonly shell: ChannelShell,
    private readonly command: string,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Runs one virsh command line (virsh's own quoting) and answers what it printed: code 1 with the error lines as
   * `stderr` when virsh reported an error. A session that ends while the command runs answers with its exit status
   * and everything it printed (virsh could not connect, or is not installed) as `stderr`.
   */
  async run(line: string, signal: AbortSignal): Promise<CommandResult> {
    if (line.includes('\n')) throw new Error('a virsh command line cannot span lines');
    if (signal.aborted) throw this.cancelled();
    const channel = await this.open(signal);
    const n = ++this.sequence;
    // Quoted on input and not on output, so the echoed command line never contains the marker.
    const markerCommand = `echo "@@${this.token}" "${n}@@"`;
    const marker = `@@${this.token} ${n}@@`;
    const release = this.shell.hold?.() ?? (() => undefined);
    const answer = new Promise<CommandResult>((resolve, reject) => {
      const entry: Pending = {
        line,
        marker,
        markerCommand,
        resolve,
        reject,
        release,
        settled: false,
        timer: setTimeout(() => {
          // A command that hangs holds every one behind it: end the session, the next command starts another.
          this.end(
            new BackendUnavailableError(
              `hypervisor ${this.hypervisor} (${this.shell.address}) did not finish a command within ${this.timeoutMs} ms`,
              { details: { hypervisor: this.hypervisor } },
            ),
          );
        }, this.timeoutMs),
      };
      this.pending.push(entry);
      channel.write(`${line}\n${markerCommand}\n`);
    });
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        reject(this.cancelled());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      // A cancelled caller stops waiting; the command still runs and its answer is read and dropped.
      return await Promise.race([answer, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Ends the session; commands still waiting fail as unavailable. */
  close(): void {
    this.end(
      new BackendUnavailableError(`hypervisor ${this.hypervisor}: the virsh session was closed`, {
        details: { hypervisor: this.hypervisor },
      }),
    );
  }

  private cancelled(): CancelledError {
    return new CancelledError(`hypervisor ${this.hypervisor}: cancelled`);
  }

  private open(signal: AbortSignal): Promise<RemoteChannel> {
    if (this.channel === undefined) {
      const attempt = this.shell.open(
        this.command,
        {
          onData: (text) => {
            this.receive(text);
          },
          onClose: (code) => {
            if (this.channel !== attempt) return;
            this.channel = undefined;
            const output = this.buffer;
            this.buffer = '';
            // What virsh printed before it ended may say why (it could not connect, it is not installed): the
            // caller translates that. Otherwise the connection dropped or virsh died: retryable.
            const said = code === 127 || /failed to connect|not found/i.test(output);
            const lost = new BackendUnavailableError(
              `hypervisor ${this.hypervisor} (${this.shell.address}) ended the virsh session while a command ran` +
                (code === undefined ? '' : ` (exit status ${code})`),
              { details: { hypervisor: this.hypervisor } },
            );
            for (const entry of this.pending.splice(0)) {
              this.settle(entry, () => {
                if (said) entry.resolve({ code: code ?? 255, stdout: '', stderr: output });
                else entry.reject(lost);
              });
            }
          },
        },
        signal,
      );
      this.channel = attempt;
      attempt.catch(() => {
        if (this.channel === attempt) this.channel = undefined;
      });
    }
    return this.channel;
  }

  private receive(text: string): void {
    this.buffer += text;
    for (;;) {
      const entry = this.pending[0];
      // Output before any command (the first prompt) waits in the buffer for the first answer.
      if (entry === undefined) return;
      const at = this.buffer.indexOf(entry.marker);
      if (at === -1) return;
      const chunk = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + entry.marker.length);
      this.pending.shift();
      this.settle(entry, () => {
        entry.resolve(answerOf(chunk, entry.line, entry.markerCommand));
      });
    }
  }

  private settle(entry: Pending, how: () => void): void {
    if (entry.settled) return;
    entry.settled = true;
    clearTimeout(entry.timer);
    entry.release();
    how();
  }

  /** Fails every waiting command with `error` and closes the channel. */
  private end(error: Error): void {
    const channel = this.channel;
    this.channel = undefined;
    this.buffer = '';
    for (const entry of this.pending.splice(0)) {
      this.settle(entry, () => {
        entry.reject(error);
      });
    }
    void channel?.then(
      (c) => {
        c.close();
      },
      () => undefined,
    );
  }
}

/**
 * `virsh event --all --loop` on one hypervisor: calls `changed` with the name of every domain an event is about
 * (defined, undefined, started, stopped, its metadata changed...), and `lost` once when the stream ends.
 */
export class DomainEvents {
  private channel: Promise<RemoteChannel> | undefined;
  private partial = '';

  /** `command` is `virsh ... event --all --loop` as a command line. */
  constructor(
    private readonly shell: ChannelShell,
    private readonly command: string,
    private readonly changed: (domain: string) => void,
    private readonly lost: () => void,
  ) {}

  /** True while the stream is open or opening. */
  get listening(): boolean {
    return this.channel !== undefined;
  }

  /** Opens the stream if it is not open; a failure to open counts as `lost`. */
  listen(): void {
    if (this.channel !== undefined) return;
    const attempt = this.shell.open(
      this.command,
      {
        onData: (text) => {
          const lines = (this.partial + text).split('\n');
          this.partial = lines.pop() ?? '';
          for (const line of lines) {
            const domain = /^event '[^']*' for domain '([^']*)'/.exec(line)?.[1];
            if (domain !== undefined) this.changed(domain);
          }
        },
        onClose: () => {
          if (this.channel !== attempt) return;
          this.channel = undefined;
          this.partial = '';
          this.lost();
        },
      },
      new AbortController().signal,
    );
    this.channel = attempt;
    attempt.catch(() => {
      if (this.channel !== attempt) return;
      this.channel = undefined;
      this.lost();
    });
  }

  /** Closes the stream (without calling `lost`). */
  close(): void {
    const channel = this.channel;
    this.channel = undefined;
    this.partial = '';
    void channel?.then(
      (c) => {
        c.close();
      },
      () => undefined,
    );
  }
}
