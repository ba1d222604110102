// Start-up reconciliation of the data directory with the database (SPEC §9,
// §11 "Reconciling on start"). Runs once, before any upload is accepted, so
// nothing else touches tmp/ or archives/ meanwhile.
#pragma once

#include "storage/data_dir.hpp"
#include "storage/volume_id.hpp"

#include <set>
#include <string>
#include <vector>

namespace portal::storage {

struct reconcile_report {
  std::vector<std::string> removed_temp;  // names removed from tmp/
  std::vector<std::string> orphaned;      // names (as found in archives/) moved to orphans/
  std::vector<std::string> missing_files; // rows of this volume with no regular file in archives/
  bool holds_any = false;           // the archive of some row of this volume is here (row_verdict)
  std::vector<std::string> claimed; // rows of no volume whose file is here
  std::vector<std::string> unattributed; // rows of no volume without a file here (kept)
  std::vector<std::string> failed;       // names a repair failed for (logged at error; retried
                                         // next start)
};

// `rows`: every completed upload's row and the volume it records
// (storage/volume_id.hpp); `here`: this directory's volume id. Each repair is
// logged with portal::log, one line per file:
//
//  - tmp/: every "*.part" (not a directory) is unlinked: no upload survives a
//    restart. Other names in tmp/ are left alone (nothing else here creates
//    them; a future tus store must not use the ".part" suffix there).
//  - archives/: a regular file named by a row's id stays, whichever volume
//    the row records (logged when it is another's). Everything else (an
//    unknown id, a name that is not a valid upload id, a directory, symlink
//    or other non-regular entry) is moved to orphans/, never deleted; if the
//    name is taken there, a UTC timestamp suffix (".20261122T100000Z", then
//    ".1", ".2", ...) is added. A row's id whose entry was not a regular file
//    is moved too and counts as not found.
//  - the rows are judged by judge_rows(): missing_files (each logged here;
//    the caller deletes those rows and audits each deletion, unless neither
//    this nor reconcile_partials() holds_any), claimed (the
//    caller records this volume on them) and unattributed (left alone).
//
// A failed repair of one entry is logged, listed in `failed` and skipped.
// Throws storage_error (or std::filesystem::filesystem_error) only when a
// directory cannot be listed or the moves cannot be made durable. Expects the
// layout from prepare_data_dir().
reconcile_report reconcile(const data_dir_layout& layout, const row_volumes& rows,
                           const std::string& here);

} // namespace portal::storage
