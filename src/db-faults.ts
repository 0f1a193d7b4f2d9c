import { busy, type HttpProblem } from './problems'

// postgres.js's own connection errors and the socket errors it passes on.
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

// SQLSTATEs of a server that is going away, starting, overloaded or out of time.
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown: the backend was terminated
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '53300', // too_many_connections
  '57014', // query_canceled: statement_timeout, or a cancel request
])

/**
 * A 503 (Retry-After: 1) for an error that means the database is unreachable, restarting or too
 * slow right now, rather than a fault of the request: the client may retry, and the pool
 * reconnects by itself once the database is back. Never the driver's message.
 */
export function databaseUnavailable(error: unknown): HttpProblem | undefined {
  if (!(error instanceof Error)) return undefined
  const code = (error as { code?: unknown }).code
  if (typeof code !== 'string') return undefined
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || UNAVAILABLE_STATES.has(code))
    return busy('The database is unavailable or too slow right now; retry shortly')
  return undefined
}
