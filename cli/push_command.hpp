// `upload-portal push FILE... --url URL` (issue 12; docs/TUS.md "push"): a
// resuming upload client over tus 1.0.0 (SPEC §5.2), the token from
// PORTAL_TOKEN (sent, never printed).
//
// For each FILE in order: resumes the upload remembered for it
// (cli/push_state.hpp) from the server's offset (HEAD), or creates one;
// sends PATCHes of PORTAL_PUSH_CHUNK_BYTES (default 8 MiB) with a sha256
// Upload-Checksum when the server offers it; retries as cli/backoff.hpp
// says, re-syncing with HEAD after any failed PATCH (409 included); then
// GETs /api/v1/uploads/{id} and compares the server's sha256 with the
// file's own. Prints each upload object on stdout (one JSON line), a
// progress line on stderr while it runs when stderr is a terminal, and one
// summary line per file on stderr.
//
// Exit 0 when every file is uploaded and verified; 1 with one line on stderr
// at the first failure (the files after it are not tried); 2 on a usage error.
#pragma once

#include "cli/command_line.hpp"

namespace portal::cli {

int push_command(const config_loader& load, const args& words);

} // namespace portal::cli
