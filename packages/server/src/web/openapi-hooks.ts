/** The OpenAPI paths of hooks: subscriptions, their deliveries, enabling a disabled hook. */
import { HOOK_EVENTS } from '@consortium/core';

const problem = { $ref: '#/components/responses/Problem' };

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'the hook id',
  schema: { type: 'string' },
};

/** Paths of `/api/hooks`, keyed as OpenAPI's `paths`. */
export function hookPaths(): Record<string, unknown> {
  return {
    '/api/hooks': {
      get: {
        summary: 'Every hook (admin); secrets are never shown',
        responses: { 200: { description: '{items}' }, default: problem },
      },
      post: {
        summary:
          'Subscribe a URL to events (admin). Deliveries are POSTed with Consortium-Event, Consortium-Delivery and Consortium-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>; the answer shows the secret, once',
        requestBody: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                additionalProperties: false,
                required: ['url', 'events'],
                properties: {
                  url: { type: 'string', format: 'uri', description: 'http:// or https://' },
                  events: { type: 'array', minItems: 1, items: { enum: [...HOOK_EVENTS] } },
                  kind: { type: 'string', description: 'only events about nodes of this kind' },
                  filter: { type: 'string', description: "a search query the event's node must match" },
                  secret: {
                    type: 'string',
                    minLength: 16,
                    maxLength: 256,
                    description: 'signs deliveries; one is made when absent',
                  },
                },
              },
            },
          },
        },
        responses: { 201: { description: 'the hook, with its secret' }, default: problem },
      },
    },
    '/api/hooks/{id}': {
      parameters: [idParameter],
      get: { summary: 'One hook', responses: { 200: { description: 'hook' }, default: problem } },
      delete: {
        summary: 'Delete a hook and its deliveries',
        responses: { 200: { description: 'deleted' }, default: problem },
      },
    },
    '/api/hooks/{id}/enable': {
      parameters: [idParameter],
      post: {
        summary: 'Enable a hook again (one that kept failing was disabled); its failure count starts afresh',
        responses: { 200: { description: 'hook' }, default: problem },
      },
    },
    '/api/hooks/{id}/deliveries': {
      parameters: [idParameter],
      get: {
        summary: "A hook's deliveries, newest first, each with every attempt (?limit=, ?cursor=)",
        responses: { 200: { description: '{items, next?}' }, default: problem },
      },
    },
  };
}
