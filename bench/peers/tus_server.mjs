// The @tus/server peer of the benchmark (issue 14): the reference tus 1.0
// server, storing each upload with @tus/file-store and nothing else (no
// auth, no validation, no hash, no fsync), so upload-portal's figures can be
// set beside a store-only tus server measured by the same load generator.
//
//   node bench/peers/tus_server.mjs <store-dir> [port]
//
// The port (default 0: the kernel picks a free one) and the store directory
// may also come from $TUS_PEER_PORT and $TUS_PEER_DIR. Uploads go to
// POST /files/, then PATCH /files/<id>. Once it listens, one line
// `listening <port>` on stdout tells bench/peers.py the port it got.
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const directory = process.argv[2] ?? process.env.TUS_PEER_DIR;
const port = Number(process.argv[3] ?? process.env.TUS_PEER_PORT ?? 0);
if (!directory) {
  console.error('usage: node tus_server.mjs <store-dir> [port]');
  process.exit(2);
}

const tus = new Server({
  path: '/files',
  datastore: new FileStore({ directory }),
});

const server = tus.listen({ host: '127.0.0.1', port }, () => {
  console.log(`listening ${server.address().port}`);
});
// Node ends a request that lasts 300 s in all; nginx and upload-portal only
// bound the gaps between reads, so a slow run must not fail here alone.
server.requestTimeout = 0;
// Exit 0 on SIGTERM, so bench/peers.py can tell a stop it asked for from a
// crash; a store-only peer has nothing to flush first.
process.on('SIGTERM', () => process.exit(0));
