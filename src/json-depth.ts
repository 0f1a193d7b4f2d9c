// Nesting limits for untrusted JSON. Deep values are cheap to send and costly to handle: Elysia's
// validation error serialises the rejected value recursively, which a 50,000-level body turned
// into a stack overflow and a stalled event loop.

const OPEN_OBJECT = 0x7b
const OPEN_ARRAY = 0x5b
const CLOSE_OBJECT = 0x7d
const CLOSE_ARRAY = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/** True when JSON text nests objects and arrays deeper than `max`; one pass, no parsing. */
export function jsonTextTooDeep(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--
  }
  return false
}

/** True when an already parsed value nests deeper than `max`; iterative, so it cannot overflow. */
export function valueTooDeep(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  const stack: [unknown, number][] = [[value, 1]]
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item
    if (depth > max) return true
    // Files and other class instances from multipart are leaves.
    if (!Array.isArray(node) && Object.getPrototypeOf(node) !== Object.prototype) continue
    for (const child of Object.values(node as object))
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return false
}
