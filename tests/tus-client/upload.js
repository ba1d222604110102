// Uploads one file with the official tus-js-client (node), for
// tests/e2e/test_tus_client.py. One JSON object per line on stdout:
//   {"event":"url","url":...}          the upload's URL, as soon as known
//   {"event":"progress","sent":N}      at most once per MiB
//   {"event":"aborted","url":...}      --abort-after: upload.abort() was called
//   {"event":"success","url":...}      then exit 0
//   {"event":"error","message":...}    then exit 1
// Usage: node upload.js ENDPOINT TOKEN FILE [--resume URL] [--abort-after BYTES]
//        [--chunk-size BYTES] [--retry-delays MS,MS,...]
"use strict";

const fs = require("fs");
const path = require("path");
const tus = require("tus-js-client");

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const [endpoint, token, file, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) opts[rest[i].replace(/^--/, "")] = rest[i + 1];

const data = fs.readFileSync(file);

function run(uploadUrl, abortAfter) {
  return new Promise((resolve, reject) => {
    let reported = 0;
    let aborted = false;
    const upload = new tus.Upload(data, {
      endpoint,
      uploadUrl: uploadUrl || null,
      headers: { Authorization: `Bearer ${token}` },
      metadata: { filename: path.basename(file) },
      chunkSize: opts["chunk-size"] ? Number(opts["chunk-size"]) : Infinity,
      // the test decides what happens after an error: none, or these (ms)
      retryDelays: opts["retry-delays"] ? opts["retry-delays"].split(",").map(Number) : null,
      onUploadUrlAvailable() {
        say({ event: "url", url: upload.url });
      },
      onProgress(sent) {
        if (sent - reported >= 1 << 20) {
          reported = sent;
          say({ event: "progress", sent });
        }
        if (abortAfter && !aborted && sent >= abortAfter) {
          aborted = true;
          upload.abort(false).then(() => {
            say({ event: "aborted", url: upload.url, sent });
            resolve(upload.url);
          }, reject);
        }
      },
      onSuccess() {
        resolve(upload.url);
      },
      onError(err) {
        reject(err);
      },
    });
    upload.start();
  });
}

(async () => {
  try {
    let url = opts.resume;
    if (opts["abort-after"]) url = await run(url, Number(opts["abort-after"]));
    url = await run(url, 0);
    say({ event: "success", url });
    process.exit(0);
  } catch (err) {
    const res = err.originalResponse;
    say({ event: "error", message: String(err.message || err), status: res ? res.getStatus() : 0 });
    process.exit(1);
  }
})();
