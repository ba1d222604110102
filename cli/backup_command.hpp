// `upload-portal backup FILE.tar.zst` and `restore FILE.tar.zst [--force]`
// (SPEC §2, §11; the file's layout: cli/backup_format.hpp).
//
// backup: the database rows from one REPEATABLE READ snapshot (through
// DATABASE_DIRECT_URL when set), the archives of exactly those rows, each
// checked against its row's sha256 on the way in, and a manifest of every
// member's sha256 last. Written to FILE.partial-XXXXXX (mode 0600) and renamed
// to FILE only when complete; an existing FILE is never replaced. "-" writes
// to stdout. Memory stays flat however large the archives.
//
// restore: refuses a database holding users or uploads, or a data dir
// holding archives, unless --force; reads the whole backup into
// PORTAL_DATA_DIR/tmp/restore/ and verifies every member's size and sha256
// (and that every upload row has its archive and every archive its row)
// before it changes anything; migrates the target to the backup's schema,
// loads the rows in one transaction, moves the archives into place, commits,
// then applies this binary's newer migrations. "-" reads stdin.
//
// Both: exit 0 on success, 1 with one line on stderr on failure, 2 on a
// usage error; a progress line on stderr when it is a terminal.
#pragma once

#include "cli/command_line.hpp"

namespace portal::cli {

int backup_command(const config_loader& load, const args& words);
int restore_command(const config_loader& load, const args& words);

} // namespace portal::cli
