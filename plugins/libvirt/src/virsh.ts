/**
 * `virsh` on one hypervisor, over a remote shell: the reads and writes the provider needs, each idempotent where
 * libvirt lets it be, and virsh's errors translated (a missing domain is a value, "already active" and "not
 * running" are done, anything else is `BackendError` with virsh's own words).
 */
import { BackendError, BackendUnavailableError } from '@consortium/plugin-api';
import type { DomainFacts, DomainMetadata } from './domain-xml.js';
import { METADATA_NS, metadataElement, parseDomainXml } from './domain-xml.js';
import type { CommandResult, RemoteShell } from './ssh-session.js';
import { canOpen, DomainEvents, VirshSession } from './virsh-session.js';

/** A domain as the provider sees it: its XML facts and whether it runs. */
export interface DomainState extends DomainFacts {
  /** True when the domain is active (running, paused, shutting down): it holds its memory. */
  readonly active: boolean;
}

/** Options of every call. */
export interface CallOptions {
  readonly signal: AbortSignal;
}

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** virsh's error lines without the `error: ` prefixes, joined: what the job shows. */
export function virshMessage(result: CommandResult): string {
  const text = (result.stderr.trim() || result.stdout.trim())
    .split('\n')
    .map((line) => line.replace(/^error:\s*/, '').trim())
    .filter((line) => line !== '')
    .join(': ');
  return text === '' ? `exit status ${result.code}` : text;
}

/** True when virsh says the domain does not exist. */
export function isDomainMissing(result: CommandResult): boolean {
  return /failed to get domain|Domain not found|no domain with matching/i.test(result.stderr);
}

const ACTIVE_STATES = new Set(['running', 'paused', 'idle', 'in shutdown', 'pmsuspended', 'blocked']);

/** Marks the domain list from the domain XMLs in the output of the scan script. */
const ACTIVE_MARK = '@consortium-active';
const DOMAIN_MARK = '@consortium-domain';

/**
 * virsh on one hypervisor. Over a shell that can keep commands running (SSH), every command but `define` goes to
 * one long-lived interactive virsh; otherwise each is its own virsh process.
 */
export class Virsh {
  private readonly session: VirshSession | undefined;

  /** Makes a virsh client for `uri` over `shell`; `hypervisor` names it in messages. */
  constructor(
    readonly hypervisor: string,
    private readonly shell: RemoteShell,
    private readonly uri: string,
    private readonly timeoutMs: number,
  ) {
    this.session = canOpen(shell)
      ? new VirshSession(hypervisor, shell, `${this.command([])} 2>&1`, timeoutMs)
      : undefined;
  }

  /**
   * Listens to the hypervisor's domain events: `changed` gets the name of each domain an event is about, `lost`
   * is called when the stream ends. Undefined when the shell cannot keep a command running.
   */
  events(changed: (domain: string) => void, lost: () => void): DomainEvents | undefined {
    if (!canOpen(this.shell)) return undefined;
    return new DomainEvents(this.shell, `${this.command(['event', '--all', '--loop'])} 2>&1`, changed, lost);
  }

  /** Ends the interactive virsh (the next command starts another). */
  close(): void {
    this.session?.close();
  }

  /** One virsh command: in the session when there is one, else as its own process. */
  private async virsh(args: readonly string[], options: CallOptions): Promise<CommandResult> {
    if (this.session === undefined) return this.exec(this.command(args), options);
    const result = await this.session.run(args.map(shellQuote).join(' '), options.signal);
    if (result.code !== 0) {
      try {
        this.checkReachable(result);
      } catch (error) {
        // A session whose libvirt connection failed is not used again.
        this.session.close();
        throw error;
      }
    }
    return result;
  }

  /** The virsh command line for `args`, in the C locale so that its messages can be matched. */
  private command(args: readonly string[]): string {
    return ['LC_ALL=C', 'virsh', '-q', '-c', this.uri, ...args].map(shellQuote).join(' ');
  }

  private async exec(command: string, options: CallOptions, stdin?: string): Promise<CommandResult> {
    const result = await this.shell.exec(command, {
      signal: options.signal,
      timeoutMs: this.timeoutMs,
      ...(stdin === undefined ? {} : { stdin }),
    });
    if (result.code !== 0) this.checkReachable(result);
    return result;
  }

  /** Throws for failures that are about reaching libvirt at all, not about the domain. */
  private checkReachable(result: CommandResult): void {
    const where = `hypervisor ${this.hypervisor} (${this.shell.address})`;
    if (result.code === 127 || /virsh: (command )?not found/.test(result.stderr)) {
      throw new BackendError(`${where} has no virsh: install libvirt-clients there`);
    }
    if (/failed to connect to the hypervisor|no valid connection/i.test(result.stderr)) {
      const message = virshMessage(result);
      if (/Permission denied|authentication|not authorized|polkit/i.test(result.stderr)) {
        throw new BackendError(
          `${where}: virsh -c ${this.uri} was refused: ${message} (add the SSH user to group libvirt)`,
        );
      }
      throw new BackendUnavailableError(`${where}: libvirtd does not answer: ${message}`, {
        details: { hypervisor: this.hypervisor },
      });
    }
  }

  private fail(action: string, name: string, result: CommandResult): BackendError {
    return new BackendError(`virsh ${action} ${name} on ${this.hypervisor}: ${virshMessage(result)}`, {
      details: { hypervisor: this.hypervisor, action, domain: name },
    });
  }

  /**
   * The virsh command line that runs `commands` (virsh's own `;`-separated command string) in one virsh process,
   * over one libvirt connection: each extra virsh process costs a connection to libvirtd (~20 ms).
   */
  private batch(commands: readonly (readonly string[])[]): string {
    return this.command([commands.map((args) => args.map(shellQuote).join(' ')).join('; ')]);
  }

  /** The domain's state and persistent definition, or null when it is not defined. */
  async domain(name: string, options: CallOptions): Promise<DomainState | null> {
    if (this.session !== undefined) {
      // Written together: the second command does not wait for the first answer to come back.
      const [state, xml] = await Promise.all([
        this.virsh(['domstate', name], options),
        this.virsh(['dumpxml', '--inactive', name], options),
      ]);
      if (state.code !== 0 || xml.code !== 0) {
        const failed = state.code !== 0 ? state : xml;
        if (isDomainMissing(failed)) return null;
        throw this.fail('dumpxml', name, failed);
      }
      return { ...parseDomainXml(xml.stdout), active: ACTIVE_STATES.has(state.stdout.trim()) };
    }
    const line = this.batch([
      ['domstate', name],
      ['dumpxml', '--inactive', name],
    ]);
    const result = await this.exec(line, options);
    if (result.code !== 0) {
      if (isDomainMissing(result)) return null;
      throw this.fail('dumpxml', name, result);
    }
    const newline = result.stdout.indexOf('\n');
    const state = result.stdout.slice(0, newline).trim();
    return { ...parseDomainXml(result.stdout.slice(newline + 1)), active: ACTIVE_STATES.has(state) };
  }

  /**
   * Every defined domain with its persistent definition and whether it runs, in two virsh processes: one lists
   * them, one reads every definition (a domain removed while the list is read is left out).
   */
  async domains(options: CallOptions): Promise<DomainState[]> {
    if (this.session !== undefined) {
      const [all, running] = await Promise.all([
        this.virsh(['list', '--all', '--uuid'], options),
        this.virsh(['list', '--uuid'], options),
      ]);
      for (const result of [all, running]) if (result.code !== 0) throw this.fail('list', '--all', result);
      const active = new Set(running.stdout.split(/\s+/).filter((u) => u !== ''));
      const uuids = all.stdout.split(/\s+/).filter((u) => u !== '');
      const dumps = await Promise.all(
        uuids.map((uuid) => this.virsh(['dumpxml', '--inactive', uuid], options)),
      );
      // A domain removed while the list is read is left out.
      return dumps
        .filter((dump) => dump.code === 0 && dump.stdout.includes('<domain'))
        .map((dump) => {
          const facts = parseDomainXml(dump.stdout);
          return { ...facts, active: facts.uuid !== undefined && active.has(facts.uuid) };
        });
    }
    const lists = this.batch([
      ['list', '--all', '--uuid'],
      ['echo', ACTIVE_MARK],
      ['list', '--uuid'],
    ]);
    const dump = `echo ${DOMAIN_MARK}; dumpxml --inactive %s; `;
    const script = [
      `lists=$(${lists}) || exit $?`,
      `all=\${lists%%${ACTIVE_MARK}*}`,
      `echo ${ACTIVE_MARK} \${lists#*${ACTIVE_MARK}}`,
      `[ -z "$(echo $all)" ] || ${this.command([])} "$(for d in $all; do printf '${dump}' "$d"; done)" 2>/dev/null`,
      'exit 0',
    ].join('; ');
    const result = await this.exec(script, options);
    if (result.code !== 0) throw this.fail('list', '--all', result);
    // With -q, virsh's `echo` prints no newline: the marks are split on as they are.
    const [head = '', ...chunks] = result.stdout.split(DOMAIN_MARK);
    const active = new Set(head.replace(ACTIVE_MARK, '').trim().split(/\s+/));
    return chunks
      .filter((chunk) => chunk.includes('<domain'))
      .map((chunk) => {
        const facts = parseDomainXml(chunk);
        return { ...facts, active: facts.uuid !== undefined && active.has(facts.uuid) };
      });
  }

  /** Defines (or redefines) a domain from its XML. */
  async define(name: string, xml: string, options: CallOptions): Promise<void> {
    const result = await this.exec(this.command(['define', '/dev/stdin']), options, xml);
    if (result.code !== 0) throw this.fail('define', name, result);
  }

  /** Starts a domain; one that is already active counts as started. Throws `BackendError` when it fails. */
  async start(name: string, options: CallOptions): Promise<void> {
    const result = await this.virsh(['start', name], options);
    if (result.code !== 0 && !/already active/i.test(result.stderr)) throw this.fail('start', name, result);
  }

  /** Powers a domain off at once; one that is not running counts as stopped. */
  async destroy(name: string, options: CallOptions): Promise<void> {
    const result = await this.virsh(['destroy', name], options);
    if (result.code !== 0 && !/not running|is not active/i.test(result.stderr) && !isDomainMissing(result)) {
      throw this.fail('destroy', name, result);
    }
  }

  /** Removes a domain's definition; one that is already gone counts as removed. */
  async undefine(name: string, options: CallOptions): Promise<void> {
    const result = await this.virsh(['undefine', name], options);
    if (result.code !== 0 && !isDomainMissing(result)) throw this.fail('undefine', name, result);
  }

  /** Replaces the plugin's metadata in the domain's persistent definition. */
  async setMetadata(name: string, metadata: DomainMetadata, options: CallOptions): Promise<void> {
    const args = ['metadata', name, '--uri', METADATA_NS, '--key', 'consortium', '--config'];
    const result = await this.virsh([...args, '--set', metadataElement(metadata)], options);
    if (result.code !== 0) throw this.fail('metadata', name, result);
  }
}
