// The page side of stock-worker.js: a thin bridge the bench drives with page.evaluate.
// Serial output goes to the bench through the binding it exposes (__stockSerial).
const worker = new Worker('/stock/stock-worker.js', { type: 'module' });
const waiters = new Map();
let nextId = 1;
let booted;
const bootedPromise = new Promise((r) => (booted = r));

worker.onmessage = ({ data: msg }) => {
  if (msg.type === 'serial') window.__stockSerial(Array.from(msg.bytes));
  else if (msg.type === 'booted') booted();
  else if (msg.type === 'error' && !waiters.has(msg.id)) window.__stockError = msg.message;
  else {
    const w = waiters.get(msg.id);
    waiters.delete(msg.id);
    if (msg.type === 'error') w?.reject(new Error(msg.message));
    else w?.resolve(msg.value ?? msg.result);
  }
};

function request(msg) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiters.set(id, { resolve, reject });
    worker.postMessage({ ...msg, id });
  });
}

window.stock = {
  boot: (opts) => {
    worker.postMessage({ type: 'boot', ...opts });
    return bootedPromise;
  },
  send: (text) => worker.postMessage({ type: 'serial-in', text }),
  instructions: () => request({ type: 'instructions' }),
  rawOpfs: (job) => request({ type: 'raw-opfs', job }),
};
