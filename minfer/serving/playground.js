// minfer playground: streams a completion from /v1/completions and shows the engine's state from
// /v1/engine. Plain JavaScript, no build step, no library.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250; // the panels' refresh: four times a second
const HISTORY_S = 30; // seconds of batch sizes the chart shows
let modelName = null;
let running = null; // the AbortController of the generation in progress
const samples = []; // {time, generated, batch} from the engine, newest last

// ---- the API key (only if the server asks for one: a 401) -------------------------------------

function headers() {
  const key = $("api-key").value.trim();
  const h = { "Content-Type": "application/json" };
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : response.statusText;
  } catch (e) {
    return response.status + " " + response.statusText;
  }
}

// ---- generating: POST /v1/completions with stream=true, read as server-sent events ---------------

function requestBody() {
  const body = {
    model: modelName,
    prompt: $("prompt").value,
    max_tokens: parseInt($("max-tokens").value, 10) || 64,
    temperature: parseFloat($("temperature").value),
    top_p: parseFloat($("top-p").value),
    stream: true,
    stream_options: { include_usage: true },
  };
  const seed = $("seed").value.trim();
  if (seed !== "") body.seed = parseInt(seed, 10);
  return body;
}

async function generate() {
  if (modelName === null) await poll(); // the request names the model, learnt from /v1/engine
  $("output-prompt").textContent = $("prompt").value;
  $("output-text").textContent = "";
  $("output-text").classList.remove("error");
  setBusy(true);
  running = new AbortController();
  const started = performance.now();
  let firstTokenAt = null;
  let summary = "";
  try {
    const response = await fetch("v1/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(requestBody()), signal: running.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const event of serverSentEvents(response)) {
      if (event.error) throw new Error(event.error.message);
      const choice = event.choices && event.choices[0];
      if (choice && choice.text) {
        if (firstTokenAt === null) firstTokenAt = performance.now();
        $("output-text").textContent += choice.text;
      }
      if (choice && choice.finish_reason) summary = "finished: " + choice.finish_reason;
      if (event.usage) summary += usageLine(event.usage, started, firstTokenAt);
    }
    $("status").textContent = summary;
  } catch (e) {
    if (e.name === "AbortError") {
      $("status").textContent = "stopped";
    } else {
      $("output-text").textContent += "\n[error] " + e.message;
      $("output-text").classList.add("error");
      $("status").textContent = "";
    }
  } finally {
    setBusy(false);
  }
}

function usageLine(usage, started, firstTokenAt) {
  const seconds = (performance.now() - started) / 1000;
  const ttft = firstTokenAt === null ? "" : `, first token after ${(firstTokenAt - started).toFixed(0)} ms`;
  return ` (${usage.prompt_tokens} prompt + ${usage.completion_tokens} new tokens in ${seconds.toFixed(2)} s${ttft})`;
}

// Yields each event's JSON: events are separated by a blank line, each line "data: ...", and the
// stream ends with "data: [DONE]".
async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function setBusy(busy) {
  $("generate").disabled = busy;
  $("stop").disabled = !busy;
  if (busy) $("status").textContent = "generating…";
  if (!busy) running = null;
}

// ---- the panels: GET /v1/engine, four times a second ------------------------------------------

async function poll() {
  try {
    const response = await fetch("v1/engine", { headers: headers() });
    if (response.status === 401) {
      $("model-line").textContent = $("api-key").value.trim()
        ? "this is not the server's API key: check the API key box"
        : "this server needs an API key: type it in the API key box";
      return;
    }
    if (!response.ok) throw new Error(await errorText(response));
    show(await response.json());
  } catch (e) {
    $("model-line").textContent = "cannot reach the server: " + e.message;
  }
}

function show(s) {
  modelName = s.model;
  $("model-line").textContent = `model ${s.model}, context ${s.n_ctx} tokens`;
  const step = s.last_step || {};
  samples.push({ time: s.time, generated: s.generated_tokens, batch: step.batch_size || 0 });
  while (samples.length && samples[0].time < s.time - HISTORY_S) samples.shift();
  $("batch-size").textContent = step.batch_size || 0;
  $("batch-noun").textContent = step.batch_size === 1 ? "sequence" : "sequences";
  $("running").textContent = s.running;
  $("waiting").textContent = s.waiting;
  $("steps").textContent = s.steps;
  drawHistory(s.running ? step.batch_size : 0);
  showBlocks(s);
  $("prefix-hits").textContent = s.prefix_cache_hits;
  $("prefix-queries").textContent = s.prefix_cache_queries;
  $("prefix-rate").textContent = s.prefix_cache_queries
    ? (100 * s.prefix_cache_hits / s.prefix_cache_queries).toFixed(0) + "%" : "–";
  $("tokens-per-second").textContent = tokensPerSecond().toFixed(1);
  showStep(step);
}

function showBlocks(s) {
  $("blocks-used").textContent = s.kv_blocks_used;
  $("blocks-cached").textContent = s.kv_blocks_cached;
  $("blocks-free").textContent = s.kv_blocks_free;
  $("blocks-total").textContent = s.kv_blocks_total;
  $("block-size").textContent = s.block_size;
  const map = $("block-map");
  while (map.children.length < s.block_map.length) map.appendChild(document.createElement("span"));
  while (map.children.length > s.block_map.length) map.lastChild.remove();
  s.block_map.forEach((state, i) => { map.children[i].className = "cell " + state; });
}

function showStep(step) {
  $("step-ms").textContent = ((step.seconds || 0) * 1000).toFixed(1);
  $("prefill-tokens").textContent = step.prefill_tokens || 0;
  $("step-flops").textContent = human(step.flops || 0);
  $("step-bytes").textContent = human(step.bytes || 0);
  $("step-intensity").textContent = step.bytes ? (step.flops / step.bytes).toFixed(2) : "–";
  $("step-gflops").textContent = step.seconds ? (step.flops / step.seconds / 1e9).toFixed(2) : "–";
  $("step-gbs").textContent = step.seconds ? (step.bytes / step.seconds / 1e9).toFixed(2) : "–";
}

// Generated tokens per second over the last second of samples (the engine's own clock).
function tokensPerSecond() {
  const last = samples[samples.length - 1];
  const first = samples.find((p) => p.time >= last.time - 1.0);
  const seconds = last.time - first.time;
  return seconds > 0 ? (last.generated - first.generated) / seconds : 0;
}

function drawHistory(current) {
  samples[samples.length - 1].batch = current; // an idle engine decodes nothing, whatever its last step did
  const canvas = $("batch-history");
  const ctx = canvas.getContext("2d");
  const top = Math.max(4, ...samples.map((p) => p.batch));
  const width = canvas.width / (HISTORY_S * 1000 / POLL_MS);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#1f77b4";
  samples.forEach((p, i) => {
    const h = (p.batch / top) * (canvas.height - 2);
    ctx.fillRect(canvas.width - (samples.length - i) * width, canvas.height - h, Math.max(width - 1, 1), h);
  });
}

function human(n) {
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) if (n >= size) return (n / size).toFixed(2) + " " + unit;
  return String(n);
}

$("generate").addEventListener("click", generate);
$("api-key").addEventListener("input", poll); // the header follows the key at once, not at the next poll
$("stop").addEventListener("click", () => running && running.abort());
poll();
setInterval(poll, POLL_MS);
