// The gateway's web API: JSON routes and the chat's server-sent events.

export class ApiError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

async function json(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError("BAD_RESPONSE", `the gateway answered ${response.status} without JSON`);
  }
  if (!response.ok || body.error) {
    const e = body.error || {};
    throw new ApiError(e.code || `HTTP_${response.status}`, e.message || "request failed", e.details);
  }
  return body;
}

export async function getConfig() {
  return json(await fetch("/api/config"));
}

export async function getNetwork() {
  return json(await fetch("/api/network"));
}

export async function getJob(jobId) {
  return json(await fetch(`/api/jobs/${jobId}`));
}

export async function answerSignature(jobId, answer) {
  return json(await fetch(`/api/jobs/${jobId}/signature`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(answer),
  }));
}

/**
 * POST /api/chat and call onEvent(name, data) for each server-sent event until the stream ends.
 * EventSource cannot POST, so the stream is read from fetch's body.
 */
export async function streamChat(request, onEvent) {
  const response = await fetch("/api/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(request),
  });
  if (!(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
    await json(response); // throws the gateway's error
    throw new ApiError("BAD_RESPONSE", "the gateway did not stream an answer");
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) await onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
