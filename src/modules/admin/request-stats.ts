/**
 * In-process request counters for /admin/metrics: totals by status class since start, and the
 * latencies of the most recent requests (a ring of WINDOW_SIZE samples no older than WINDOW_MS).
 */
const WINDOW_SIZE = 10_000
const WINDOW_MS = 5 * 60_000

const counts = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
const latencies = new Float64Array(WINDOW_SIZE)
const times = new Float64Array(WINDOW_SIZE)
let next = 0
let filled = 0

/** Called once per answered request from the request log hook. */
export function recordRequest(status: number, ms: number) {
  const key = `${Math.min(Math.max(Math.floor(status / 100), 1), 5)}xx` as keyof typeof counts
  counts[key] += 1
  latencies[next] = ms
  times[next] = performance.now()
  next = (next + 1) % WINDOW_SIZE
  if (filled < WINDOW_SIZE) filled += 1
}

const round = (ms: number) => Math.round(ms * 100) / 100

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, p: number) {
  if (sorted.length === 0) return null
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0)
}

export function requestStats() {
  const since = performance.now() - WINDOW_MS
  const recent: number[] = []
  for (let i = 0; i < filled; i += 1) if ((times[i] ?? 0) >= since) recent.push(latencies[i] ?? 0)
  const sorted = Float64Array.from(recent).sort()
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  return {
    total,
    by_status: { ...counts },
    latency_ms: {
      window_seconds: WINDOW_MS / 1000,
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
    },
  }
}

/** Requests answered since start (src/index.ts shrinks the process after load when it stops). */
export const answeredRequests = () =>
  counts['1xx'] + counts['2xx'] + counts['3xx'] + counts['4xx'] + counts['5xx']
