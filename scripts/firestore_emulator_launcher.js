// Start @firestore-emulator/server bound to 127.0.0.1 only (its own start() binds 0.0.0.0).
//
// Usage: node scripts/firestore_emulator_launcher.js <install-prefix> [port]
//   <install-prefix>  folder given to `npm install --prefix` (holds node_modules/@firestore-emulator/server)
//   [port]            TCP port on 127.0.0.1; 0 (default) lets the OS pick a free one
//
// Prints one line `FIRESTORE_EMULATOR_READY 127.0.0.1:<port>` on stdout once the gRPC server
// listens, so a test fixture can read the port without a race. Exits on SIGTERM/SIGINT.
"use strict";

const path = require("path");
const { createRequire } = require("module");

const prefix = path.resolve(process.argv[2] || ".tools/firestore-emulator");
const port = Number.parseInt(process.argv[3] || "0", 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`port must be an integer in 0..65535. Got ${process.argv[3]} instead.`);
  process.exit(2);
}

const requireFromPrefix = createRequire(path.join(prefix, "node_modules", "noop.js"));
const serverEntry = requireFromPrefix.resolve("@firestore-emulator/server");
const { FirestoreServer } = requireFromPrefix(serverEntry);
// The server's grpc-js must be the one the package itself resolves: ServerCredentials from a
// different copy of @grpc/grpc-js is rejected by its Server.
const requireFromServer = createRequire(serverEntry);
const grpc = requireFromServer("@grpc/grpc-js");

const emulator = new FirestoreServer();
// `server` is private in the TypeScript types, public at run time.
emulator.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(`firestore emulator: cannot bind 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`FIRESTORE_EMULATOR_READY 127.0.0.1:${bound}`);
});

function stop() {
  emulator.stop();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
