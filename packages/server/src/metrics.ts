/** Prometheus metrics (prom-client): HTTP, jobs, provider tasks, queues and leadership. */
import type { Coordinator } from '@consortium/core';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { QUEUES } from './protocol.js';

/** The metrics of one process. */
export class Metrics {
  readonly registry = new Registry();
  private readonly http: Histogram;
  private readonly jobs: Counter;
  private readonly rounds: Histogram;
  private readonly tasks: Histogram;

  private readonly retries: Counter;

  /** Registers every metric; queue gauges read the coordinator's stats at scrape time. */
  constructor(
    coordinator: Coordinator,
    isLeader: () => boolean,
    keepaliveLagMs: () => number | undefined = () => undefined,
  ) {
    collectDefaultMetrics({ register: this.registry });
    this.http = new Histogram({
      name: 'consortium_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
      registers: [this.registry],
    });
    this.jobs = new Counter({
      name: 'consortium_jobs_total',
      help: 'Jobs ended, by kind and final state.',
      labelNames: ['kind', 'state'],
      registers: [this.registry],
    });
    this.rounds = new Histogram({
      name: 'consortium_job_rounds',
      help: 'Planner rounds per ended job.',
      buckets: [1, 2, 3, 5, 8, 13, 21, 50],
      registers: [this.registry],
    });
    this.tasks = new Histogram({
      name: 'consortium_provider_task_duration_seconds',
      help: 'Provider task duration by provider and result.',
      labelNames: ['provider', 'result'],
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120],
      registers: [this.registry],
    });
    new Gauge({
      name: 'consortium_queue_tasks',
      help: 'Tasks per queue and state (ready, delayed, claimed, dead).',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        for (const name of QUEUES) {
          const stats = await coordinator.queue(name).stats();
          this.set({ queue: name, state: 'ready' }, stats.ready);
          this.set({ queue: name, state: 'delayed' }, stats.delayed);
          this.set({ queue: name, state: 'claimed' }, stats.claimed);
          this.set({ queue: name, state: 'dead' }, stats.dead);
        }
      },
    });
    this.retries = new Counter({
      name: 'consortium_task_retries_total',
      help: 'Provider tasks dispatched again after a retryable error, a lost worker or a failover, by provider.',
      labelNames: ['provider'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'consortium_lease_keepalive_lag_seconds',
      help: "Age of the newest acknowledged keepalive of this process's etcd session lease (lost at half its TTL).",
      registers: [this.registry],
      collect() {
        const lag = keepaliveLagMs();
        if (lag !== undefined) this.set(lag / 1000);
      },
    });
    new Gauge({
      name: 'consortium_leader',
      help: '1 while this process leads (runs the master), else 0.',
      registers: [this.registry],
      collect() {
        this.set(isLeader() ? 1 : 0);
      },
    });
  }

  /** Records one HTTP request. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  /** Records one ended job. */
  jobEnded(kind: string, state: string, rounds?: number): void {
    this.jobs.inc({ kind, state });
    if (rounds !== undefined) this.rounds.observe(rounds);
  }

  /** Records a task dispatched again (attempt 2 or later). */
  taskRetried(provider: string): void {
    this.retries.inc({ provider });
  }

  /** Records one provider task. */
  taskRan(provider: string, result: 'ok' | 'error', ms: number): void {
    this.tasks.observe({ provider, result }, ms / 1000);
  }
}
