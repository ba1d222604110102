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

} // namespace portal::storage
