// The tus_session actor's state and the steps its two files share:
// actors/tus_session.cpp serves the requests (a PATCH, HEAD, termination,
// the idle timer), actors/tus_completion.cpp records a whole upload and
// settles a record the database did not simply take (docs/TUS.md
// "Completion"). Private to those two files: the actor's interface is
// actors/tus_session.hpp.
#pragma once

#include "actors/actor_probe.hpp"
#include "actors/db_request.hpp"
#include "actors/tus_session.hpp"
#include "db/tus_uploads.hpp"
#include "db/uploads.hpp"
#include "storage/archive_check.hpp"
#include "storage/partial_file.hpp"
#include "storage/sha256_hasher.hpp"
#include "storage/upload_file.hpp"

#include <caf/all.hpp>
#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace portal::tus_detail {

// The database's answers to a completion's record and to a question about a
// record in doubt, which the session sends itself.
using tus_recorded = db_outcome<std::variant<db::upload_row, failure>>;
using tus_fate = db_outcome<db::completion_fate>;

} // namespace portal::tus_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::tus_detail::tus_recorded)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::tus_detail::tus_fate)

namespace portal::tus_detail {

// The session's whole interface: the handlers' and the feed's messages, and
// the database's answer to completion, which the session sends itself.
using session_actor =
  tus_session_actor::extend<caf::reacts_to<recorded_atom, tus_recorded>,
                            caf::reacts_to<settled_atom>, caf::reacts_to<fate_atom, tus_fate>>;

// The running Upload-Checksum digest of one PATCH's body (OpenSSL EVP).
class patch_digest {
public:
  explicit patch_digest(const std::string& algorithm) : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    const EVP_MD* md = algorithm == "sha1" ? EVP_sha1() : EVP_sha256();
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw std::runtime_error("EVP_DigestInit_ex failed");
  }
  void update(const char* data, std::size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
  }

private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// One PATCH (or creation-with-upload POST) being served.
struct patch_state {
  uint64_t number = 0;
  uint64_t start = 0; // the durable offset it began at
  tus_begin head;
  upload_link_ptr link; // set by tus_attach_atom
  upload_session_actor feed;
  std::unique_ptr<patch_digest> checksum;
};

enum class phase { open, completing, over };

struct session_state {
  probe_ptr probe; // what /admin/actors shows of it, progress included
  std::shared_ptr<actor_directory> dir;
  std::shared_ptr<tus_registry> registry;
  tus_limits limits;
  tus_upload_info info;
  std::optional<storage::partial_file> file;
  uint64_t durable = 0;  // the partial's size at its last fsync
  uint64_t unsynced = 0; // appended since
  // Rebuilt from the durable prefix at the first PATCH (replay).
  std::unique_ptr<storage::archive_check> check;
  std::unique_ptr<storage::sha256_hasher> sha;
  // What a finished validation found, kept when a completion the database
  // did not take reopens the upload: the whole file is then judged already,
  // and the next attempt needs no replay (of up to Tus-Max-Size bytes, at
  // every attempt of an outage).
  struct verdict {
    storage::archive_summary summary;
    std::string sha256;
  };
  std::optional<verdict> judged;
  std::optional<patch_state> patch;
  uint64_t patches = 0;
  uint64_t idle_generation = 0;
  phase at = phase::open;
  bool terminated = false; // while completing: the completion must not reopen it
  // A completion's record was answered `timeout` but may still hold a db
  // worker (a statement waiting on a lock) until it is rolled back: no
  // second attempt before, or retries during an outage would fill the pool.
  bool record_in_flight = false;
  bool expiry_pending = false; // move_expiry once that attempt has settled
  // A completion whose COMMIT is in doubt: still `completing` (HEAD answers
  // 423) until the database says what it did (ask_fate).
  bool in_doubt = false;
  bool asking = false; // a question about it is out
  const char* name = "tus_session";
};

using session_ptr = session_actor::stateful_pointer<session_state>;

// ---- shared by both files (tus_session.cpp) ---------------------------------------

// 507 for a full disk, else 503 (logged): a storage error as the answer.
failure storage_failure(const storage::storage_error& e);
// Replays the durable prefix through a new validator and digest.
std::optional<failure> rebuild(session_ptr self);
tus_progress progress_of(session_ptr self, bool created);
// Answers the PATCH being served, if any, and lets its feed go.
void end_patch(session_ptr self, upload_answer answer);
// Upload-Expires moves (SPEC §5.2 expiration); the row follows, however late.
void move_expiry(session_ptr self);
// The upload can never complete: partial and row go, `why` is the answer.
void destroy(session_ptr self, failure why);

// ---- the record (tus_completion.cpp) ----------------------------------------------

// Every byte is durable: validated, moved into archives/, recorded.
void complete(session_ptr self);
// What a record whose COMMIT is in doubt did: asked once at a time.
void ask_fate(session_ptr self);
void on_recorded(session_ptr self, tus_recorded& outcome);
void on_fate(session_ptr self, const tus_fate& fate);

} // namespace portal::tus_detail
