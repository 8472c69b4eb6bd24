/**
 * The expected SSH host key of a hypervisor, from config: an OpenSSH public key line (`ssh-ed25519 AAAA...`, as in
 * `/etc/ssh/ssh_host_ed25519_key.pub` or a `known_hosts` line) or a fingerprint (`SHA256:...`, as `ssh-keygen -l`
 * prints it). A connection whose server presents another key is refused before authentication.
 */
import { createHash } from 'node:crypto';
import { InputError } from '@consortium/plugin-api';

/** The host key algorithms to offer for a key of each type, so that the server presents the configured key. */
const ALGORITHMS: Readonly<Record<string, readonly string[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** A parsed expected host key. */
export interface ExpectedHostKey {
  /** The host key algorithms to offer (only for a full key; a fingerprint leaves the default list). */
  readonly algorithms?: readonly string[];
  /** The SHA256 fingerprint of the expected key, `SHA256:...`. */
  readonly fingerprint: string;
  /** True when the key the server presents (its wire-format blob) is the expected one. */
  matches(blob: Buffer): boolean;
}

/** The OpenSSH SHA256 fingerprint of a key blob: `SHA256:` and unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a wire-format key blob (its first string). */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length > 0 && 4 + length <= blob.length
    ? blob.subarray(4, 4 + length).toString('latin1')
    : undefined;
}

/**
 * Parses a configured host key; throws `InputError` (naming `where`) when it is neither a public key line of a
 * known type nor a `SHA256:` fingerprint.
 */
export function parseHostKey(text: string, where: string): ExpectedHostKey {
  const trimmed = text.trim();
  const fingerprint = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(trimmed);
  if (fingerprint !== null) {
    const expected = `SHA256:${fingerprint[1] ?? ''}`;
    return { fingerprint: expected, matches: (blob) => fingerprintOf(blob) === expected };
  }
  const tokens = trimmed.split(/\s+/);
  // A known_hosts line starts with the host pattern; a .pub line with the type.
  const at = tokens.findIndex((token) => Object.hasOwn(ALGORITHMS, token));
  const type = at === -1 ? undefined : tokens[at];
  const base64 = at === -1 ? undefined : tokens[at + 1];
  const blob = base64 === undefined ? undefined : Buffer.from(base64, 'base64');
  if (type === undefined || blob === undefined || keyTypeOf(blob) !== type) {
    throw new InputError(
      `${where}: hostKey must be an OpenSSH public key line ("ssh-ed25519 AAAA...", e.g. the hypervisor's ` +
        `/etc/ssh/ssh_host_ed25519_key.pub) or a fingerprint ("SHA256:..." from ssh-keygen -lf)`,
    );
  }
  return {
    algorithms: ALGORITHMS[type] as readonly string[],
    fingerprint: fingerprintOf(blob),
    matches: (presented) => presented.equals(blob),
  };
}
