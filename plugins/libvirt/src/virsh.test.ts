import { describe, expect, it } from 'vitest';
import { isDomainMissing, shellQuote, virshMessage } from './virsh.js';
import { answerOf } from './virsh-session.js';

describe('virsh helpers', () => {
  it('quotes words for a POSIX shell', () => {
    expect(shellQuote('qemu:///system')).toBe('qemu:///system');
    expect(shellQuote('web-01')).toBe('web-01');
    expect(shellQuote("it's $x")).toBe(`'it'\\''s $x'`);
    expect(shellQuote('<vm booted="yes"/>')).toBe(`'<vm booted="yes"/>'`);
  });

  it("keeps virsh's words without the error: prefixes", () => {
    const result = {
      code: 1,
      stdout: '',
      stderr:
        "error: Failed to start domain 'web-01'\nerror: Network not found: no network with matching name 'x'\n",
    };
    expect(virshMessage(result)).toBe(
      "Failed to start domain 'web-01': Network not found: no network with matching name 'x'",
    );
    expect(virshMessage({ code: 3, stdout: '', stderr: '' })).toBe('exit status 3');
    expect(isDomainMissing({ code: 1, stdout: '', stderr: "error: failed to get domain 'web-01'\n" })).toBe(
      true,
    );
    expect(isDomainMissing(result)).toBe(false);
  });

  it('reads one answer of the interactive virsh: output and error lines, without prompt and echoes', () => {
    const marker = 'echo "@@t" "1@@"';
    expect(
      answerOf(`virsh # domstate web-01\nshut off\n\nvirsh # ${marker}\n`, 'domstate web-01', marker),
    ).toEqual({
      code: 0,
      stdout: 'shut off\n\n',
      stderr: '',
    });
    expect(
      answerOf(
        `domstate nosuch\nerror: failed to get domain 'nosuch'\nvirsh # ${marker}\n`,
        'domstate nosuch',
        marker,
      ),
    ).toEqual({ code: 1, stdout: '', stderr: "error: failed to get domain 'nosuch'\n" });
  });
});
