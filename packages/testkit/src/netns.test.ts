import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lab } from './netns.js';
import { labUnavailable, removeStaleLabs, startLab } from './netns.js';

const unavailable = await labUnavailable();
if (unavailable !== undefined) console.warn(`netns lab tests skipped: ${unavailable}`);

/** An echo server inside a host: answers each line with `<name>:<line>`. */
const ECHO = `
const name = process.argv[1];
require('node:net').createServer((s) => s.on('data', (d) => s.write(name + ':' + d))).listen(
  { host: process.argv[2], port: Number(process.argv[3]) }, () => process.stdout.write('ready\\n'));
`;

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Sends `line` to 127.0.0.1:`port` and resolves with the answer, or rejects after `ms`. */
function ask(port: number, line: string, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer'));
    }, ms);
    socket.on('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString());
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed without an answer'));
    });
    socket.write(line);
  });
}

let lab: Lab | undefined;
afterEach(async () => {
  await lab?.remove();
  lab = undefined;
});

describe.skipIf(unavailable !== undefined)('a lab of network namespaces', () => {
  it('hosts reach each other across the bridge, a pulled cable cuts one off, and remove() leaves nothing', async () => {
    lab = await startLab();
    const made = namespaces().filter((n) => n.startsWith(`cslab-${process.pid}-`));
    expect(made).toHaveLength(1);
    const server = await lab.addHost('server');
    const client = await lab.addHost('client');
    expect([server.address, client.address]).toEqual(['10.231.0.2', '10.231.0.3']);
    // The machine's own namespace has no address of the lab.
    expect(execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' })).not.toContain('10.231.0.');
    const echo = lab.spawn(server, process.execPath, ['-e', ECHO, 'server', server.address, '7000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) =>
      echo.stdout?.once('data', () => {
        resolve();
      }),
    );
    const port = await lab.exposeToTest(client, server.address, 7000);
    expect(await ask(port.port, 'hello')).toBe('server:hello');
    await lab.linkDown(server);
    await expect(ask(port.port, 'lost', 1500)).rejects.toThrow(/no answer|closed without an answer/);
    await lab.linkUp(server);
    let answer: string | undefined;
    for (let i = 0; i < 20 && answer === undefined; i++) {
      answer = await ask(port.port, 'back', 1500).catch(() => undefined);
    }
    expect(answer).toBe('server:back');
    const dir = lab.dir;
    await lab.remove();
    lab = undefined;
    expect(namespaces().filter((n) => n.startsWith(`cslab-${process.pid}-`))).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    // remove() killed what ran inside: the echo server ends (a timeout here fails the test).
    if (echo.exitCode === null && echo.signalCode === null) {
      await new Promise((resolve) => echo.once('exit', resolve));
    }
    expect(echo.signalCode).toBe('SIGKILL');
  }, 60_000);

  it('a service of the test process is reachable inside the lab at a host address', async () => {
    lab = await startLab();
    const here = createServer((socket) => socket.on('data', (d) => socket.write(`test:${d.toString()}`)));
    await new Promise<void>((resolve) => here.listen(0, '127.0.0.1', resolve));
    try {
      const gateway = await lab.addHost('gateway');
      const client = await lab.addHost('client');
      await lab.exposeToLab(gateway, 8000, (here.address() as AddressInfo).port);
      const port = await lab.exposeToTest(client, gateway.address, 8000);
      expect(await ask(port.port, 'round trip')).toBe('test:round trip');
    } finally {
      here.close();
    }
  }, 60_000);

  it('removes namespaces a crashed run left behind, and only those', () => {
    // pid 2^22 + 1 is above Linux's pid limit: no live process has it.
    const stale = 'cslab-4194305-xxxx-switch';
    execFileSync('ip', ['netns', 'add', stale]);
    try {
      expect(removeStaleLabs()).toContain(stale);
      expect(namespaces()).not.toContain(stale);
    } finally {
      if (namespaces().includes(stale)) execFileSync('ip', ['netns', 'delete', stale]);
    }
  });
});
