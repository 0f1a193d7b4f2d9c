import type { LogLevel } from './config'

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

export type Fields = Record<string, unknown>
export type Logger = {
  debug(msg: string, fields?: Fields): void
  info(msg: string, fields?: Fields): void
  warn(msg: string, fields?: Fields): void
  error(msg: string, fields?: Fields): void
}

/** Structured JSON logs, one object per line on stdout (warn and error on stderr). */
export function createLogger(level: LogLevel, base: Fields = {}): Logger {
  const threshold = order[level]
  if (threshold < order.silent) keepRunningWhenOutputCloses()
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Fields) => {
    if (order[lvl] < threshold) return
    const head = { level: lvl, time: new Date().toISOString(), msg }
    // The head leads the line, and a field of the same name cannot overwrite it.
    const line = serialise(Object.assign({ ...head }, base, fields, head))
    if (order[lvl] >= order.warn) process.stderr.write(`${line}\n`)
    else process.stdout.write(`${line}\n`)
  }
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  }
}

// Logging runs inside the error chokepoint, so it must never throw: BigInts become strings,
// Errors their name and message, and an object met again (a cycle) a marker.
function serialise(record: Fields): string {
  const seen = new WeakSet<object>()
  return JSON.stringify(record, (_key, value: unknown) => {
    if (typeof value === 'bigint') return value.toString()
    if (value instanceof Error) return { name: value.name, message: value.message }
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[repeated]'
      seen.add(value)
    }
    return value
  })
}

let guarded = false

// A log reader that goes away (closed pipe: EPIPE) must not take the server down with it.
function keepRunningWhenOutputCloses() {
  if (guarded) return
  guarded = true
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})
}

/** Error details for the log only: never sent to a client. */
export function describeError(error: unknown): Fields {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return { error: error.message, error_name: error.name, error_code: code, stack: error.stack }
  }
  return { error: String(error) }
}
