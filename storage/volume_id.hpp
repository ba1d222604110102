// The identity of a data directory (PORTAL_DATA_DIR, the Fly volume): 22
// random url-safe characters kept in <data_dir>/volume-id and recorded on
// every uploads and tus_uploads row whose file is stored there (their
// volume_id column, migration 0004). Start-up reconciliation (SPEC §9, §11)
// deletes only rows of this directory's id, so an empty or wrong directory
// (an unmounted volume, a mistyped path) or another machine's volume on the
// same database never deletes a row whose file it does not hold
// (docs/ARCHITECTURE.md, "Reconciling on start").
#pragma once

#include "storage/data_dir.hpp"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace portal::storage {

struct volume_identity {
  std::string id;
  bool created = false;    // made by this call
  std::string copied_from; // the id this call replaced: the file named another machine
  std::string copied_from_machine;
};

// Reads <root>/volume-id: the id, and on a second line the machine it was
// made on (FLY_MACHINE_ID; no line when that was unset). When there is no
// file, or it names another machine than `machine_id` (the directory is a
// copy: a forked volume, a volume made from a snapshot, or one moved to a
// new machine, while the original may still be serving its own rows), a new
// id is made durably: written under tmp/ as "<random>.volume-id.part" (a
// stale one is removed by the next start's reconciliation), fsynced, renamed
// into place (without replacing, when there was no file: two processes
// racing both get the winner's id), root fsynced.
// Throws storage_error: EINVAL when the file does not hold a valid id and
// machine (it is never replaced: an operator decides), or the errno of the
// call that failed (e.g. EROFS on a read-only directory without the file).
volume_identity open_volume_identity(const data_dir_layout& layout, const std::string& machine_id);

// Replaces the id in <root>/volume-id with a new one (copied_from: the old
// one): the directory turned out not to be the volume its id names (it
// holds none of that volume's files). Throws storage_error as above, ENOENT
// when there is no file.
volume_identity renew_volume_identity(const data_dir_layout& layout, const std::string& machine_id);

// Rows as start-up reconciliation sees them: each id and the volume id
// recorded on it, "" when it records none (a row made before migration 0004,
// or restored from a backup: a backup carries no volume ids).
using row_volumes = std::map<std::string, std::string>;

// What a volume may do with the rows, given the ids whose files it found.
// Only a row recorded on this volume is judged missing; a row of no volume
// is taken over by the volume holding its file and otherwise left alone, as
// the volume holding it may simply not be mounted here.
struct row_verdict {
  // Rows of this volume without their file: delete, when holds_any. When
  // the directory holds the file of none of this volume's rows (uploads and
  // tus together), it is not that volume (an id copied by hand to the wrong
  // directory) and deletes none: the caller gives it its own id.
  std::vector<std::string> missing;
  bool holds_any = false;                // the file of some row of this volume is here
  std::vector<std::string> claimed;      // rows of no volume whose file is here: record this volume
  std::vector<std::string> unattributed; // rows of no volume without a file here: keep
  std::vector<std::string> foreign;      // rows of another volume whose file is here too: keep
};

// All lists sorted. `here` is this directory's volume id.
row_verdict judge_rows(const row_volumes& rows, const std::string& here,
                       const std::set<std::string>& present);

} // namespace portal::storage
