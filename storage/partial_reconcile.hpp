// Start-up reconciliation of tus partials (SPEC §9, docs/TUS.md): runs once
// before the listener exists, so no session touches partials/ meanwhile.
#pragma once

#include "storage/data_dir.hpp"

#include <set>
#include <string>
#include <vector>

namespace portal::storage {

struct partial_report {
  std::vector<std::string> kept;    // a row and a file: fsynced, its size is the offset
  std::vector<std::string> removed; // files without a row (never acknowledged as complete)
  std::vector<std::string> missing; // rows without a file: the caller deletes them
};

// `known_ids`: this machine's tus rows (expired ones already deleted). Each
// repair is logged, one line per file. A file whose fsync fails is logged
// and left for the session to report.
partial_report reconcile_partials(const data_dir_layout& layout,
                                  const std::set<std::string>& known_ids);

} // namespace portal::storage
