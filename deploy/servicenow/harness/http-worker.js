// The harness's network: RESTMessageV2.execute() is synchronous on the platform, so the main thread posts the request
// here and blocks on Atomics.wait until this worker has the answer (or the timeout fired).
'use strict';
const { parentPort, workerData } = require('node:worker_threads');

const flag = new Int32Array(workerData.shared);

parentPort.on('message', async (req) => {
    let out;
    try {
        const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body,
            signal: AbortSignal.timeout(req.timeoutMs) });
        const headers = {};
        res.headers.forEach((v, k) => { headers[k] = v; });
        out = { status: res.status, headers, body: await res.text() };
    } catch (err) {
        const timedOut = err && (err.name === 'TimeoutError' || err.name === 'AbortError');
        out = { status: 0, headers: {}, body: '', error: timedOut ? `Request timed out after ${req.timeoutMs} ms`
            : `Connection failed: ${err && err.cause ? err.cause.code || err.cause.message : err}` };
    }
    workerData.port.postMessage(out);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
});
