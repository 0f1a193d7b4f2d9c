const MAX_FILENAME_CHARS = 255
// C0 and C1 controls, DEL, and the bidirectional overrides that can disguise an extension.
const UNSAFE_CHARS = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu

/**
 * The client's filename made safe to show and to send back in a header: the last path part only
 * (`../../etc/passwd` becomes `passwd`), no control characters, trimmed, at most 255 characters
 * (keeping the extension when it has to cut). It is never used as a path on disk.
 */
export function sanitizeFilename(raw: string): string {
  const base = raw.normalize('NFC').split(/[/\\]/).at(-1) ?? ''
  const clean = base.replace(UNSAFE_CHARS, '').trim()
  const name = /^\.*$/.test(clean) ? 'file' : clean
  const chars = Array.from(name)
  if (chars.length <= MAX_FILENAME_CHARS) return name
  const dot = name.lastIndexOf('.')
  const ext = dot > 0 ? Array.from(name.slice(dot)) : []
  if (ext.length > 0 && ext.length <= 20)
    return chars.slice(0, MAX_FILENAME_CHARS - ext.length).join('') + ext.join('')
  return chars.slice(0, MAX_FILENAME_CHARS).join('')
}

// RFC 8187 attr-char: what may stand unescaped in `filename*`.
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/

/** `attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266, 8187). */
export function contentDisposition(filename: string): string {
  const fallback = Array.from(filename, (c) =>
    /^[\x20-\x7e]$/.test(c) && c !== '"' && c !== '\\' ? c : '_',
  ).join('')
  const encoded = Array.from(new TextEncoder().encode(filename), (byte) => {
    const c = String.fromCharCode(byte)
    return byte < 0x80 && ATTR_CHAR.test(c)
      ? c
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }).join('')
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`
}

// type "/" subtype, as RFC 9110 tokens; parameters (charset ...) are dropped.
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}$/

/** The type Bun gave the file (from its extension) when well-formed, else application/octet-stream. */
export function storedMediaType(declared: string): string {
  const type = declared.split(';')[0]?.trim().toLowerCase() ?? ''
  return MEDIA_TYPE.test(type) ? type : 'application/octet-stream'
}
