// A Server-Sent Events parser (the WHATWG "event stream" format): fed text as it arrives, in any
// chunking, it hands back whole messages. Lines end in CRLF, LF or CR; `:` starts a comment;
// `data` lines join with newlines; `id` sets the last event id (and persists: a message without
// an `id` field keeps the previous one); `retry` sets the reconnection time; a blank line ends a
// message, and a message with no `data` is not dispatched.

/** One dispatched message. */
export interface SseMessage {
  /** `event:`; `message` when absent. */
  event: string;
  /** The `data:` lines, joined by newlines. */
  data: string;
  /** The last event id after this message (`undefined` until the stream sets one). */
  id: string | undefined;
}

export class SseParser {
  private buffer = '';
  private started = false;
  /** A CR ended the last chunk: an LF that starts the next one belongs to it. */
  private pendingCr = false;
  private event = '';
  private data: string[] = [];
  private hasData = false;
  /** The last event id, kept across messages and reconnections. */
  lastEventId: string | undefined;
  /** The reconnection time the server asked for with `retry:`, in ms. */
  retryMs: number | undefined;

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId;
  }

  /** Forgets a partial message (the connection ended in the middle of one); keeps the id. */
  reset(): void {
    this.buffer = '';
    this.started = false;
    this.pendingCr = false;
    this.event = '';
    this.data = [];
    this.hasData = false;
  }

  /** Feeds text; returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      let end: number;
      let next: number;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 === this.buffer.length) {
          // The LF of a CRLF may be in the next chunk.
          this.pendingCr = true;
          next = cr + 1;
        } else {
          next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      const message = this.line(this.buffer.slice(start, end));
      if (message) out.push(message);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const message = this.hasData
      ? { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n'), id: this.lastEventId }
      : undefined;
    this.event = '';
    this.data = [];
    this.hasData = false;
    return message;
  }
}
