/**
 * Timestamps a client sends for a timestamptz column (task due dates, token expiries, list
 * bounds): which of them PostgreSQL stores and the driver reads back unchanged.
 */

// The instants a timestamp column stores and reads back unchanged: PostgreSQL has no year 0 and
// cannot read toISOString's expanded years (+010000-…), and the driver's parse of its text
// (src/db.ts, `new Date`) reads the years 1 to 99 as 1950 to 2049.
const EARLIEST_INSTANT = Date.parse('0100-01-01T00:00:00.000Z')
const LATEST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z')
export const INSTANT_RANGE = 'an RFC 3339 timestamp between the years 100 and 9999 (UTC)'

// RFC 3339 (seconds optional), or a calendar date meaning its midnight UTC. The request schemas'
// `date-time` format also lets through `01/02/2026` or `2026-12-01 10:00`, which Date.parse
// reads in the server's own time zone.
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/

const inRange = (n: number, low: number, high: number) => n >= low && n <= high

/** The time of a timestamp, or undefined when it is malformed or outside what can be stored. */
export function storableTime(value: string): number | undefined {
  const text = value.toUpperCase()
  const m = TIMESTAMP.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m
    .slice(1)
    .map((part) => Number(part ?? 0)) as number[]
  // setUTCFullYear, unlike Date.UTC, takes the years 0 to 99 as they are.
  const date = new Date(0)
  date.setUTCFullYear(year as number, (month as number) - 1, day)
  const fieldsOk =
    date.getUTCMonth() === (month as number) - 1 &&
    date.getUTCDate() === day &&
    inRange(hour as number, 0, 23) &&
    inRange(minute as number, 0, 59) &&
    inRange(second as number, 0, 59) &&
    inRange(offsetHours as number, 0, 23) &&
    inRange(offsetMinutes as number, 0, 59)
  if (!fieldsOk) return undefined
  const time = Date.parse(m[4] === undefined ? `${text}T00:00:00Z` : text)
  return time >= EARLIEST_INSTANT && time <= LATEST_INSTANT ? time : undefined
}
