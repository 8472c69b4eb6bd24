import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InputError } from './errors.js';
import type { HookRecord } from './hooks.js';
import { hookAfterAttempt, signDelivery, verifyDeliverySignature } from './hooks.js';

const BODY = '{"id":"j-1.node","event":"node.created"}';
const SECRET = 'whsec_0123456789abcdef';
const T = 1_700_000_000;

function rejects(fn: () => void, message: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  expect((caught as Error).message).toBe(message);
}

describe('delivery signatures', () => {
  it('signs "<t>.<body>" with HMAC-SHA256 as Stripe does', () => {
    const mac = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signDelivery(SECRET, T, BODY)).toBe(`t=${T},v1=${mac}`);
    expect(() => {
      verifyDeliverySignature(signDelivery(SECRET, T, BODY), SECRET, BODY, T + 10);
    }).not.toThrow();
  });

  it('refuses another secret, another body, an old timestamp and a malformed header', () => {
    const header = signDelivery(SECRET, T, BODY);
    const mismatch = 'the signature does not match the body and the secret';
    rejects(() => {
      verifyDeliverySignature(header, 'whsec_other', BODY, T);
    }, mismatch);
    rejects(() => {
      verifyDeliverySignature(header, SECRET, `${BODY} `, T);
    }, mismatch);
    rejects(() => {
      verifyDeliverySignature(header.replace(`t=${T}`, `t=${T + 1}`), SECRET, BODY, T);
    }, mismatch);
    rejects(() => {
      verifyDeliverySignature(header, SECRET, BODY, T + 301);
    }, "the signature's timestamp is more than 300 s from now");
    for (const bad of ['', 'v1=abc', `t=${T}`, `t=x,v1=abc`]) {
      rejects(() => {
        verifyDeliverySignature(bad, SECRET, BODY, T);
      }, 'the signature header is not t=<seconds>,v1=<hex>');
    }
  });
});

describe('hookAfterAttempt', () => {
  const hook: HookRecord = {
    id: 'h-1',
    url: 'http://127.0.0.1/',
    events: ['node.created'],
    secret: SECRET,
    enabled: true,
    consecutiveFailures: 1,
    createdAt: 0,
    actor: 'dev',
  };

  it('resets on success, counts failures and disables once at the limit', () => {
    expect(hookAfterAttempt(hook, true, 2)).toEqual({
      hook: { ...hook, consecutiveFailures: 0 },
      disabled: false,
    });
    const reached = hookAfterAttempt(hook, false, 2);
    expect(reached).toEqual({ hook: { ...hook, consecutiveFailures: 2, enabled: false }, disabled: true });
    expect(hookAfterAttempt(reached.hook, false, 2)).toEqual({
      hook: { ...hook, consecutiveFailures: 3, enabled: false },
      disabled: false,
    });
  });
});
