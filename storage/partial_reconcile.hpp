// Start-up reconciliation of tus partials (SPEC §9, docs/TUS.md): runs once
// before the listener exists, so no session touches partials/ meanwhile.
#pragma once

#include "storage/data_dir.hpp"
#include "storage/volume_id.hpp"

#include <set>
#include <string>
#include <vector>

namespace portal::storage {

struct partial_report {
  std::vector<std::string> kept;    // a row and a file: fsynced, its size is the offset
  std::vector<std::string> removed; // files without a row (never acknowledged as complete)
  std::vector<std::string> missing; // rows of this volume without a file: the caller
                                    // deletes them
  bool holds_any = false;           // the partial of some row of this volume is here (row_verdict)
  std::vector<std::string> claimed; // rows of no volume whose file is here
  std::vector<std::string> unattributed; // rows of no volume without a file here (kept)
};

// `rows`: every tus row (expired ones of this machine already deleted) and
// the volume it records; `here`: this directory's volume id. A partial whose
// row records another volume is kept; the rows are judged by judge_rows()
// (storage/volume_id.hpp). Each repair is logged, one line per file. A file
// whose fsync fails is logged and left for the session to report.
partial_report reconcile_partials(const data_dir_layout& layout, const row_volumes& rows,
                                  const std::string& here);

// A tus completion cut off between its move into archives/ and its record's
// COMMIT (a crash, a power loss, a kill while the record waited on a lock)
// leaves archives/<id> with a tus row and no partial. These are the ids of
// `tus_rows` (every tus row and its volume; another volume's are left alone)
// whose archive is a regular file and whose partial is not there. Whether
// each is an upload (its record committed), may still become one (that
// COMMIT still runs) or never will is the database's to say (main.cpp).
std::vector<std::string> archived_partials(const data_dir_layout& layout,
                                           const row_volumes& tus_rows, const std::string& here);

// Moves each archive of `ids` back to partials/ (return_to_partials), whole,
// for the next HEAD to complete (docs/TUS.md, Completion). Each move is
// logged; a failed one too, and is then left to reconcile(). Returns the ids
// moved.
std::vector<std::string> return_unrecorded_archives(const data_dir_layout& layout,
                                                    const std::vector<std::string>& ids);

} // namespace portal::storage
