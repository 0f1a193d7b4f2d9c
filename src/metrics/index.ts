import { Elysia } from 'elysia'
import client from 'prom-client'
import { rejections } from '../modules/ratelimit/plugin'
import { FastHistogram, type Series } from './histogram'
import { onQueryDone, queriesInFlight } from './queries'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export type MetricsSources = {
  /** Requests the HTTP server is handling right now. */
  inFlight: () => number
  /** Open WebSockets. */
  webSockets: () => number
  /** Messages received on WebSockets since start. */
  webSocketMessages: () => number
  /** Messages published to WebSocket topics since start (one per publish). */
  webSocketPublished: () => number
}

/** Records one answered request: called by http.ts's request log, early answers included. */
export type ObserveRequest = (
  method: string,
  route: string,
  status: number,
  seconds: number,
) => void

/**
 * The Prometheus metrics of one app, in a registry of its own (so several apps in one process,
 * as in the tests, do not mix): requests by method, route template (never the raw path, so no
 * ids in labels; `unmatched` for no route, `unrouted` for answers given before routing: 413, 415,
 * preflights) and status, their latency, requests in flight, database queries in flight and
 * their latency by statement kind, open WebSockets and their messages, rate-limit rejections,
 * and prom-client's process metrics (memory, CPU, event-loop lag, heap). The query figures and
 * rate-limit rejections are counted per process, not per app.
 */
export function createMetrics() {
  const registry = new client.Registry()
  client.collectDefaultMetrics({ register: registry })
  const sources: MetricsSources = {
    inFlight: () => 0,
    webSockets: () => 0,
    webSocketMessages: () => 0,
    webSocketPublished: () => 0,
  }
  // Written on every request: the fast histogram, which also gives the request counter.
  const requests = new FastHistogram(
    registry,
    'http_request_duration_seconds',
    'Time from a request arriving to its answer, by method, route template and status',
    LATENCY_BUCKETS,
    {
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status',
    },
  )
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
    name: 'websocket_messages_published_total',
    help: 'Messages published to /ws topics (events and notifications), one per publish whatever the number of subscribers',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(sources.webSocketPublished())
    },
  })
  new client.Gauge({
    name: 'db_queries_in_flight',
    help: 'Database queries handed to the connection pool and not answered yet (waiting for a connection or running); postgres.js exposes no pool state',
    registers: [registry],
    collect() {
      this.set(queriesInFlight())
    },
  })
  const queryLatency = new FastHistogram(
    registry,
    'db_query_duration_seconds',
    'Time from a query being handed to the pool to its answer, by statement kind (first keyword) and outcome',
    LATENCY_BUCKETS,
  )
  // Each query lands here: its series found by two property reads, no label key to build.
  const querySeries: Partial<Record<string, [Series?, Series?]>> = {}
  const stopQueries = onQueryDone((kind, ok, seconds) => {
    let pair = querySeries[kind]
    if (!pair) {
      pair = []
      querySeries[kind] = pair
    }
    const at = ok ? 0 : 1
    let series = pair[at]
    if (!series) {
      const outcome = ok ? 'ok' : 'error'
      series = queryLatency.get(`${kind} ${outcome}`, () => ({ kind, outcome }))
      pair[at] = series
    }
    queryLatency.observe(series, seconds)
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

  const observe: ObserveRequest = (method, route, status, seconds) => {
    const series = requests.get(`${method} ${status} ${route}`, () => ({
      method,
      route: route || 'unmatched',
      status: String(status),
    }))
    requests.observe(series, seconds)
  }
  const plugin = new Elysia({ name: 'metrics' })
    .decorate('metrics', { registry, sources })
    .onStop(stopQueries)
  return { registry, sources, plugin, observe, stop: stopQueries }
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
