// The publish API of the Node references: `POST /api/v1/events` with the API key, a JSON event or
// array of events, each checked for type, tenantId and data, then delivered in order. The same
// work the gateway's publish API does before routing, shared by both references.

const MAX_BODY = 1_000_000;

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * Handles one publish request: `check(event)` may return a message refusing an event (400, and
 * nothing delivered); otherwise `deliver(event)` runs for each, and the answer is 202.
 */
export function publishHandler({ apiKey, deliver, check = () => null }) {
  return (req, res) => {
    if (req.headers['x-api-key'] !== apiKey) return answer(res, 401, { error: { type: 'auth', message: 'Invalid API key' } });
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      let events;
      try {
        events = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(res, 400, { error: { type: 'validation', message: 'invalid JSON' } });
      }
      if (!Array.isArray(events)) events = [events];
      for (const [i, e] of events.entries()) {
        if (typeof e?.type !== 'string' || typeof e.tenantId !== 'string' || typeof e.data !== 'object' || e.data === null) {
          return answer(res, 400, { error: { type: 'validation', message: `events[${i}] needs type, tenantId and data` } });
        }
        const refused = check(e);
        if (refused) return answer(res, 400, { error: { type: 'validation', message: `events[${i}]${refused}` } });
      }
      for (const e of events) deliver(e);
      answer(res, 202, { accepted: events.length });
    });
  };
}
