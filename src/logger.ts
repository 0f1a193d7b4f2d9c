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
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Fields) => {
    if (order[lvl] < threshold) return
    const line = JSON.stringify({
      level: lvl,
      time: new Date().toISOString(),
      msg,
      ...base,
      ...fields,
    })
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

/** Error details for the log only: never sent to a client. */
export function describeError(error: unknown): Fields {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    return { error: error.message, error_name: error.name, error_code: code, stack: error.stack }
  }
  return { error: String(error) }
}
