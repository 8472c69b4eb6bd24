/**
 * Certificates for tests of TLS links, made with Debian's `openssl` into a temporary directory: a CA, server
 * certificates with IP and DNS subject alternative names, and client certificates whose common name is the user
 * they authenticate (PostgreSQL's `cert` method and etcd's client-certificate auth read it). Keys are ECDSA P-256:
 * quick to make on a loaded machine, and understood by Node, Go (etcd) and OpenSSL (PostgreSQL).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its private key, as PEM files. */
export interface CertFiles {
  /** The certificate (PEM). */
  readonly cert: string;
  /** Its private key (PEM, PKCS#8, mode 0600). */
  readonly key: string;
}

/** A certificate authority made by `makeCertificateAuthority`. */
export interface CertificateAuthority extends CertFiles {
  /** The CA's common name. */
  readonly name: string;
  /** The directory every file of this CA lives in. */
  readonly dir: string;
  /** Issues a server certificate for `name`, valid for the given IP addresses and DNS names. */
  server(
    name: string,
    sans: { readonly ips?: readonly string[]; readonly dns?: readonly string[] },
  ): Promise<CertFiles>;
  /** Issues a client certificate whose common name is `commonName` (the user it authenticates). */
  client(commonName: string): Promise<CertFiles>;
  /** Removes the directory and every file in it (unless the caller gave the directory); safe to call twice. */
  remove(): void;
}

const installHint = 'install the Debian package `openssl` (`apt-get install openssl`)';

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new Error(
          missing
            ? `openssl is not installed: ${installHint}`
            : `openssl ${args.join(' ')} failed: ${stderr.trim() || error.message}`,
        ),
      );
    });
  });
}

/** The file-name part of a name: letters, digits and dashes. */
function fileName(name: string): string {
  return name.replace(/[^a-zA-Z0-9-]+/g, '-');
}

const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * Makes a CA named `name` (self-signed, valid two days) in a fresh temporary directory (`dir` when given: the
 * directory must exist). Throws when `openssl` is missing, saying what to install.
 */
export async function makeCertificateAuthority(name: string, dir?: string): Promise<CertificateAuthority> {
  const root = dir ?? mkdtempSync(join(tmpdir(), 'consortium-certs-'));
  const base = fileName(name);
  const ca: CertFiles = { cert: join(root, `${base}.crt`), key: join(root, `${base}.key`) };
  await openssl(
    [
      'req',
      '-x509',
      ...keyArgs,
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    root,
  );
  chmodSync(ca.key, 0o600);
  let serial = 0;

  const issue = async (commonName: string, extensions: readonly string[]): Promise<CertFiles> => {
    serial += 1;
    const stem = `${base}-${fileName(commonName)}-${serial}`;
    const files: CertFiles = { cert: join(root, `${stem}.crt`), key: join(root, `${stem}.key`) };
    const csr = join(root, `${stem}.csr`);
    const ext = join(root, `${stem}.ext`);
    writeFileSync(ext, `${['basicConstraints=CA:FALSE', ...extensions].join('\n')}\n`);
    await openssl(
      ['req', '-new', ...keyArgs, '-keyout', files.key, '-out', csr, '-subj', `/CN=${commonName}`],
      root,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-set_serial',
        String(Date.now() * 1000 + serial),
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        files.cert,
      ],
      root,
    );
    chmodSync(files.key, 0o600);
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
    return files;
  };

  return {
    name,
    dir: root,
    ...ca,
    server: (serverName, sans) => {
      const names = [
        ...(sans.ips ?? []).map((ip) => `IP:${ip}`),
        ...(sans.dns ?? []).map((dns) => `DNS:${dns}`),
      ];
      if (names.length === 0)
        throw new Error(`server certificate ${serverName} needs at least one IP or DNS name`);
      // clientAuth too: etcd uses its server certificate as a client for its own gateway and health checks.
      return issue(serverName, [
        `subjectAltName=${names.join(',')}`,
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth,clientAuth',
      ]);
    },
    client: (commonName) =>
      issue(commonName, ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']),
    remove: () => {
      if (dir === undefined) rmSync(root, { recursive: true, force: true });
    },
  };
}
