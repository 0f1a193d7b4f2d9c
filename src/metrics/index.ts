import { Elysia } from 'elysia'
import client from 'prom-client'
import { rejections } from '../modules/ratelimit/plugin'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export type MetricsSources = {
  /** Requests the HTTP server is handling right now. */
  inFlight: () => number
  /** Open WebSockets. */
  webSockets: () => number
  /** Messages received on WebSockets since start. */
  webSocketMessages: () => number
}

/**
 * The Prometheus metrics of one app, in a registry of its own (so several apps in one process,
 * as in the tests, do not mix): requests by method, route template (never the raw path, so no
 * ids in labels) and status, their latency, requests in flight, open WebSockets, rate-limit
 * rejections, and prom-client's process metrics (memory, CPU, event-loop lag, heap).
 */
export function createMetrics() {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry })
  const sources: MetricsSources = {
    inFlight: () => 0,
    webSockets: () => 0,
    webSocketMessages: () => 0,
  }
  const labelNames = ['method', 'route', 'status'] as const
  const requests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames,
    registers: [registry],
  })
  const latency = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from a request arriving to its answer, by method, route template and status',
    labelNames,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  new client.Gauge({
    name: 'http_requests_in_flight',
    help: 'HTTP requests being handled',
    registers: [registry],
    collect() {
      this.set(sources.inFlight())
    },
  })
  new client.Gauge({
    name: 'websocket_connections',
    help: 'Open WebSockets on /ws',
    registers: [registry],
    collect() {
      this.set(sources.webSockets())
    },
  })
  new client.Counter({
    name: 'websocket_messages_received_total',
    help: 'Messages received on /ws, those dropped by its rate limit included',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(sources.webSocketMessages())
    },
  })
  new client.Counter({
    name: 'rate_limit_rejections_total',
    help: 'Requests refused with 429 by a rate limit, by policy (`api` or `auth`)',
    labelNames: ['policy'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [policy, count] of rejections) this.inc({ policy }, count)
    },
  })

  const started = new WeakMap<Request, number>()
  const plugin = new Elysia({ name: 'metrics' })
    .decorate('metrics', { registry, sources })
    .onRequest(({ request }) => {
      started.set(request, performance.now())
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set }) => {
      const start = started.get(request)
      if (start === undefined) return
      const labels = {
        method: request.method,
        route: route || 'unmatched',
        status: String(typeof set.status === 'number' ? set.status : 200),
      }
      requests.inc(labels)
      latency.observe(labels, (performance.now() - start) / 1000)
    })
  return { registry, sources, plugin }
}

/** GET /metrics in the Prometheus text format on a listener of its own (METRICS_PORT). */
export function serveMetrics(
  registry: client.Registry,
  options: { hostname: string; port: number },
) {
  return Bun.serve({
    ...options,
    reusePort: false,
    async fetch(request) {
      if (new URL(request.url).pathname !== '/metrics' || request.method !== 'GET')
        return new Response('Not found\n', { status: 404 })
      return new Response(await registry.metrics(), {
        headers: { 'content-type': registry.contentType },
      })
    },
  })
}
