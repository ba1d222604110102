// Start-up reconciliation of the data directory with the database (SPEC §9,
// §11 "Reconciling on start"). Runs once, before any upload is accepted, so
// nothing else touches tmp/ or archives/ meanwhile.
#pragma once

#include "storage/data_dir.hpp"

#include <set>
#include <string>
#include <vector>

namespace portal::storage {

struct reconcile_report {
  std::vector<std::string> removed_temp;  // names removed from tmp/
  std::vector<std::string> orphaned;      // names (as found in archives/) moved to orphans/
  std::vector<std::string> missing_files; // known ids with no regular file in archives/
  std::vector<std::string> failed;        // names a repair failed for (logged at error; retried
                                          // next start)
};

// `known_ids`: the ids of every row whose archive must exist (completed
// uploads). Each repair is logged with portal::log, one line per file:
//
//  - tmp/: every "*.part" (not a directory) is unlinked: no upload survives a
//    restart. Other names in tmp/ are left alone (nothing else here creates
//    them; a future tus store must not use the ".part" suffix there).
//  - archives/: a regular file named by a known id stays. Everything else (an
//    unknown id, a name that is not a valid upload id, a directory, symlink
//    or other non-regular entry) is moved to orphans/, never deleted; if the
//    name is taken there, a UTC timestamp suffix (".20261122T100000Z", then
//    ".1", ".2", ...) is added. A known id whose entry was not a regular file
//    is moved too and also reported missing.
//  - missing_files lists, sorted, the known ids without a file; it is logged
//    here, and the caller deletes those rows and audits each deletion.
//
// A failed repair of one entry is logged, listed in `failed` and skipped.
// Throws storage_error (or std::filesystem::filesystem_error) only when a
// directory cannot be listed or the moves cannot be made durable. Expects the
// layout from prepare_data_dir().
reconcile_report reconcile(const data_dir_layout& layout, const std::set<std::string>& known_ids);

} // namespace portal::storage
