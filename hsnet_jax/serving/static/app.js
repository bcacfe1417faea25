// The demo page: a photo (dropped or chosen) or webcam frames go to POST /predict; every face
// the answer holds is boxed and labelled on the picture, the selected one's probabilities shown
// as bars. Errors are written on the page. No library, nothing from another origin.
"use strict";

const $ = (id) => document.getElementById(id);
const FRAME_SIDE = 480;      // webcam frames are sent with this longer side (the server warms it)
const FRAME_INTERVAL = 250;  // ms between webcam frames at most: a few per second
const state = { picture: null, answer: null, selected: 0, camera: null, answers: 0 };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function percent(p) { return `${(100 * p).toFixed(1)}%`; }

async function loadModel() {
  try {
    const response = await fetch("/model");
    const m = await response.json();
    const metrics = m.test_metrics;
    const accuracy = metrics ? `test accuracy ${percent(metrics.accuracy)} (mean per class ${percent(metrics.mean_accuracy)})`
                             : "no test metrics yet (run hsnet_jax.evaluate)";
    $("model").textContent = `Model ${m.name}: ${m.dataset}, ${m.input_size}x${m.input_size} input, ${accuracy}. ` +
                             `Classes: ${m.classes.join(", ")}.`;
  } catch (e) {
    showError("The server cannot be reached: is python -m hsnet_jax.serve running?");
  }
}

// POST one picture; resolves to the answer, or throws an Error whose message is the server's reason.
async function ask(body, headers) {
  let response;
  try {
    response = await fetch("/predict", { method: "POST", body, headers });
  } catch (e) {
    throw new Error("The server cannot be reached: is python -m hsnet_jax.serve running?");
  }
  let answer = null;
  try { answer = await response.json(); } catch (e) { /* not JSON: reported below */ }
  if (response.status === 422 && answer && answer.error) return { file: answer.file, faces: [], note: answer.error };
  if (!response.ok) throw new Error((answer && answer.error) || `The server answered ${response.status} ${response.statusText}`);
  return answer;
}

function draw() {
  const canvas = $("picture"), ctx = canvas.getContext("2d");
  if (!state.picture) return;
  const source = state.picture, w = source.videoWidth || source.width, h = source.videoHeight || source.height;
  const scale = state.camera ? Math.min(1, FRAME_SIDE / Math.max(w, h)) : 1;
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const faces = (state.answer && state.answer.faces) || [];
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 250));
  const largest = Math.max(12, Math.round(Math.max(canvas.width, canvas.height) / 40));
  ctx.lineWidth = line;
  faces.forEach((face, i) => {
    const [x0, y0, x1, y1] = face.box;
    const colour = i === state.selected ? "#e8a33d" : "#0b6e4f";
    ctx.strokeStyle = colour;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const font = Math.min(largest, Math.max(11, Math.round((x1 - x0) / 6)));  // small faces, small labels
    ctx.font = `bold ${font}px system-ui, sans-serif`;
    const label = `${i + 1} ${face.prediction} ${face.probabilities[face.prediction].toFixed(2)}`;
    const tw = ctx.measureText(label).width + 2 * line, th = font + line;
    const ty = y0 - th >= 0 ? y0 - th : y0;
    ctx.fillStyle = colour;
    ctx.fillRect(x0 - line / 2, ty, tw, th);
    ctx.fillStyle = "#ffffff";
    ctx.fillText(label, x0 + line, ty + font * 0.9);
  });
}

function showBars() {
  const bars = $("bars");
  bars.replaceChildren();
  const face = state.answer && state.answer.faces[state.selected];
  $("bars-title").textContent = face ? `Probabilities of face ${state.selected + 1}` : "Probabilities";
  if (!face) return;
  for (const [name, p] of Object.entries(face.probabilities)) {
    const row = document.createElement("div");
    row.className = name === face.prediction ? "bar top" : "bar";
    const label = document.createElement("span"), track = document.createElement("span");
    const fill = document.createElement("span"), value = document.createElement("span");
    label.className = "name"; track.className = "track"; fill.className = "fill"; value.className = "value";
    label.textContent = name;
    fill.style.width = percent(p);
    value.textContent = percent(p);
    track.append(fill);
    row.append(label, track, value);
    bars.append(row);
  }
}

function select(i) {
  state.selected = i;
  document.querySelectorAll("#faces button").forEach((b, j) => b.classList.toggle("selected", j === i));
  showBars();
  draw();
}

function showAnswer(answer) {
  state.answer = answer;
  if (state.selected >= answer.faces.length) state.selected = 0;
  const list = $("faces");
  list.replaceChildren();
  answer.faces.forEach((face, i) => {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button";
    button.dataset.box = face.box.map(Math.round).join(",");
    button.textContent = `${face.prediction} ${percent(face.probabilities[face.prediction])}`;
    button.addEventListener("click", () => select(i));
    item.append(button);
    list.append(item);
  });
  $("result").hidden = false;
  select(state.selected);
  state.answers += 1;
  document.body.dataset.answers = String(state.answers);
}

async function predictFile(file) {
  stopCamera();
  showError("");
  $("status").textContent = `Looking for faces in ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  const url = URL.createObjectURL(file);
  const image = new Image();
  const shown = new Promise((resolve) => { image.onload = () => resolve(true); image.onerror = () => resolve(false); });
  image.src = url;
  try {
    const answer = await ask(form);
    if (await shown) {
      state.picture = image;
      $("stage").hidden = false;
    }
    showAnswer(answer);
    $("status").textContent = answer.note || `${answer.faces.length} face(s) in ${file.name}. Select a face to see its probabilities.`;
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function startCamera() {
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser gives no access to a webcam here (it needs http://127.0.0.1 or https).");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
  } catch (e) {
    showError(`The webcam cannot be used: ${e.name === "NotAllowedError" ? "permission was refused" : e.message || e.name}.`);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  state.camera = { stream, busy: false, timer: null };
  state.picture = video;
  state.answer = null;
  $("stage").hidden = false;
  $("camera").textContent = "Stop the webcam";
  $("camera").setAttribute("aria-pressed", "true");
  $("status").textContent = "Webcam on: a few frames a second go to the server; the last answer is drawn.";
  const frame = document.createElement("canvas");
  state.camera.timer = setInterval(() => sendFrame(frame), FRAME_INTERVAL);
  const render = () => { if (state.camera) { draw(); requestAnimationFrame(render); } };
  requestAnimationFrame(render);
}

function sendFrame(frame) {
  const camera = state.camera, video = $("video");
  if (!camera || camera.busy || !video.videoWidth) return;
  const scale = Math.min(1, FRAME_SIDE / Math.max(video.videoWidth, video.videoHeight));
  frame.width = Math.round(video.videoWidth * scale);
  frame.height = Math.round(video.videoHeight * scale);
  frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
  camera.busy = true;
  frame.toBlob(async (blob) => {
    try {
      const answer = await ask(blob, { "Content-Type": "image/jpeg" });
      if (state.camera !== camera) return;
      showError("");
      showAnswer(answer);
      $("status").textContent = answer.note ? "Webcam on: no face in view." : `Webcam on: ${answer.faces.length} face(s).`;
    } catch (e) {
      if (state.camera === camera) showError(e.message);
    } finally {
      camera.busy = false;
    }
  }, "image/jpeg", 0.85);
}

function stopCamera() {
  if (!state.camera) return;
  clearInterval(state.camera.timer);
  state.camera.stream.getTracks().forEach((t) => t.stop());
  state.camera = null;
  state.picture = null;
  $("camera").textContent = "Start the webcam";
  $("camera").setAttribute("aria-pressed", "false");
  $("status").textContent = "Webcam off.";
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) predictFile(e.target.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) predictFile(e.dataTransfer.files[0]);
  });
  $("camera").addEventListener("click", () => (state.camera ? stopCamera() : startCamera()));
  $("picture").addEventListener("click", (e) => {
    const canvas = e.currentTarget, rect = canvas.getBoundingClientRect();
    const x = (e.clientX - rect.left) * canvas.width / rect.width, y = (e.clientY - rect.top) * canvas.height / rect.height;
    const faces = (state.answer && state.answer.faces) || [];
    const hit = faces.findIndex((f) => x >= f.box[0] && x <= f.box[2] && y >= f.box[1] && y <= f.box[3]);
    if (hit >= 0) select(hit);
  });
  loadModel();
}

setUp();
