/** Jobs: the list, one job (optionally waiting for its end), cancelling, and its event stream (SSE). */
import express from 'express';
import type { JobEvent, JobState } from '@consortium/core';
import { ConflictError, InputError } from '@consortium/core';
import { encodeJobNotice, jobTopic } from '../../protocol.js';
import { actorNames } from '../actors.js';
import { requireRole } from '../auth.js';
import type { WebDeps } from '../shared.js';
import { TERMINAL, jobOf, listenForJob, parseLimit, parseWait, single, waitForJob } from '../shared.js';
import { openEventStream, sseEvent } from '../sse.js';
import { jobView } from '../views.js';

/** The longest an event stream goes without reading its job's events when no notice comes (a lost notice is late by at most this). */
const EVENT_POLL_MS = 3000;

/** The router of `/api/jobs`. */
export function jobsRouter(
  deps: Pick<WebDeps, 'store' | 'coordinator' | 'clock' | 'logger'>,
): express.Router {
  const { store, coordinator, clock, logger } = deps;
  const router = express.Router();
  router.get('/jobs', async (req, res) => {
    requireRole(res, 'reader');
    const query = req.query as Record<string, unknown>;
    const known = ['state', 'kind', 'name', 'limit', 'cursor'];
    const unknown = Object.keys(query).filter((k) => !known.includes(k));
    if (unknown.length > 0)
      throw new InputError(`unknown filter(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
    const states = single(query['state'], 'state')?.split(',');
    for (const state of states ?? []) {
      if (![...TERMINAL, 'held', 'queued', 'running'].includes(state))
        throw new InputError(`unknown job state "${state}"`);
    }
    const kind = single(query['kind'], 'kind');
    const name = single(query['name'], 'name');
    const cursor = single(query['cursor'], 'cursor');
    const page = await store.listJobs({
      limit: parseLimit(query['limit'], 50, 500),
      ...(states === undefined ? {} : { states: states as JobState[] }),
      ...(kind === undefined ? {} : { kind }),
      ...(name === undefined ? {} : { name }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const actors = await actorNames(store);
    res.json({
      items: page.items.map((j) => jobView(j, actors, { summary: true })),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  });

  router.get('/jobs/:id', async (req, res) => {
    requireRole(res, 'reader');
    const wait = parseWait(single(req.query['wait'], 'wait'));
    const job = await jobOf(store, req.params['id']);
    const shown = wait === undefined ? job : await waitForJob(deps, job.id, wait);
    res.json(jobView(shown, await actorNames(store)));
  });

  router.post('/jobs/:id/cancel', async (req, res) => {
    const caller = requireRole(res, 'operator');
    const job = await jobOf(store, req.params['id']);
    if (TERMINAL.includes(job.state))
      throw new ConflictError(`job ${job.id} has already ended (${job.state})`);
    const now = clock.now();
    const updated = await store.updateJob(job.id, { cancelRequested: { by: caller.id, at: now } }, now);
    await coordinator.notify(jobTopic(job.id), encodeJobNotice({ kind: 'cancel' }));
    res.status(202).json(jobView(updated, await actorNames(store)));
  });

  router.get('/jobs/:id/events', async (req, res) => {
    requireRole(res, 'reader');
    const job = await jobOf(store, req.params['id']);
    const stream = openEventStream(req, res, { retryMs: 2000, keepAliveMs: 15_000 });
    // Last-Event-ID is a decimal event number; anything else starts from the beginning.
    let last = /^(0|[1-9][0-9]{0,15})$/.test(stream.lastEventId) ? Number(stream.lastEventId) : 0;
    // Whether the job's `ended` may lie at or before `last`: only while the client's Last-Event-ID is all that is
    // known. From 0, or once an event was sent, `ended` (the job's last event) comes after `last` and a read of the
    // events finds it, so a poll needs no second read of the job.
    let beyond = last > 0;
    let ended = false;
    let closed = false;
    let pumping = Promise.resolve();
    const encode = (event: JobEvent): string =>
      sseEvent(event.type, String(event.seq), { ...event, at: new Date(event.at).toISOString() });
    /** Sends the events after `last` in one write (the first write also sends the headers); ends after `ended`. */
    const pump = async (): Promise<void> => {
      if (ended || closed) return;
      const events = await store.listEvents(job.id, last);
      let chunk = '';
      for (const event of events) {
        chunk += encode(event);
        last = Math.max(last, event.seq);
        beyond = false;
        if (event.type === 'ended') ended = true;
      }
      if (!ended && beyond && events.length === 0 && TERMINAL.includes((await jobOf(store, job.id)).state)) {
        // An ended job whose `ended` event lies at or before Last-Event-ID (a client that claims to have seen
        // more than there is): the stream still ends with `ended`, so that no client waits for an event that
        // will never come.
        const final = (await store.listEvents(job.id, 0)).findLast((event) => event.type === 'ended');
        if (final !== undefined) {
          chunk += encode(final);
          ended = true;
        }
      }
      if (ended) stream.end(chunk);
      else stream.send(chunk);
    };
    // The master sends its notices without waiting for etcd, and one that fails is lost: a poll makes it late by
    // at most EVENT_POLL_MS. A wake restarts the poll's period (a stream that hears notices does not poll), and each
    // stream's period lies between half of EVENT_POLL_MS and all of it, so that streams opened together do not
    // read the store together.
    const poll = setInterval(
      () => {
        wake();
      },
      EVENT_POLL_MS * (0.5 + Math.random() / 2),
    );
    const wake = (): void => {
      poll.refresh();
      pumping = pumping.then(pump).catch((error: unknown) => {
        logger.warn('event stream failed', { job: job.id, error: (error as Error).message });
        stream.end();
      });
    };
    const unsubscribe = listenForJob(coordinator, job.id, wake);
    res.on('close', () => {
      closed = true;
      clearInterval(poll);
      unsubscribe();
    });
    pumping = pumping.then(pump);
    await pumping;
  });
  return router;
}
