// One request being answered. The session builds it from the request head and
// hands it to a handler; the handler answers by calling reply() once, from
// any thread (the sink posts back to the connection's strand). Handlers run
// on an Asio thread or, after a database answer, on a CAF thread: they never
// block.
#pragma once

#include "actors/actor_directory.hpp"
#include "actors/chunk_pool.hpp"
#include "actors/token_buckets.hpp"
#include "actors/upload_admission.hpp"
#include "actors/upload_types.hpp"
#include "config/config.hpp"
#include "db/identity.hpp"
#include "net/http.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace portal {

class metrics;
class tus_registry;
struct db_pool_counts;
struct exchange;
struct services;
using exchange_ptr = std::shared_ptr<exchange>;
using handler_fn = void (*)(const services&, exchange_ptr);

// What handlers may use: app-wide, outlives every connection.
struct services {
  const config& cfg;
  caf::actor_system& sys;
  std::shared_ptr<actor_directory> directory;
  std::shared_ptr<db_pool_counts> db_counts;
  std::shared_ptr<chunk_pool> chunks;
  std::shared_ptr<upload_admission> admission;
  std::shared_ptr<portal::metrics> metrics;
  std::shared_ptr<token_buckets> logins; // failed logins per client address
  // Where requests go: the API router, or on the metrics listener /metrics only.
  handler_fn route;
  std::shared_ptr<tus_registry> tus = nullptr; // live tus sessions (actors/tus_registry.hpp)
  std::string volume_id = {}; // of PORTAL_DATA_DIR, recorded on new rows (storage/volume_id.hpp)
};

struct exchange {
  http::request_header<> head;
  std::string path;                // percent-encoded path, no query
  std::vector<std::string> params; // the route's {placeholders}
  std::string request_id;
  std::string client_ip;
  std::optional<db::identity> user;       // set once authenticated
  std::function<void(any_response)> sink; // set by the session: posts to its strand

  // Instead of reply(): hands the request body to an upload actor. The
  // session calls `spawn` on its strand with the link the actor answers
  // through, then streams the body to the actor it returns, under credit.
  using spawn_upload = std::function<upload_session_actor(upload_link_ptr)>;
  std::function<void(spawn_upload)> stream_body;

  // Or: the whole body of a small request (a form), at most `limit` bytes;
  // `done` gets it, or the status to refuse it with (413 too large, 400
  // malformed; a client that vanished is answered into the void).
  using small_body = std::variant<std::string, http::status>;
  std::function<void(std::size_t limit, std::function<void(small_body)> done)> read_body;

  exchange() = default;
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;
  // A handler that drops its exchange unanswered is a bug; the client still
  // gets an answer instead of a hung connection.
  ~exchange() {
    if (!replied_.exchange(true) && sink)
      sink(internal_error());
  }

  // The answer will come through an upload_link, not through reply().
  // Like deliver(), it lets go of every callback that holds the connection:
  // the exchange may outlive the answer inside a database request, and a
  // connection held that long keeps a drain waiting on it.
  void hand_over(spawn_upload spawn) {
    if (!replied_.exchange(true)) {
      sink = nullptr;
      read_body = nullptr;
      std::exchange(stream_body, nullptr)(std::move(spawn));
    }
  }

  // Answers the request; the first call wins. Safe from any thread.
  void reply(response res) { deliver(std::move(res)); }
  void reply(file_response res) { deliver(std::move(res)); }

  std::chrono::steady_clock::time_point db_deadline(const config& cfg) const {
    return std::chrono::steady_clock::now() + cfg.db_deadline;
  }

private:
  void deliver(any_response res) {
    // Moving the sink out lets go of the connection at once, though the
    // exchange may outlive the answer inside a database request that has
    // not ended yet.
    if (!replied_.exchange(true)) {
      stream_body = nullptr;
      read_body = nullptr;
      std::exchange(sink, nullptr)(std::move(res));
    }
  }
  static response internal_error();
  std::atomic<bool> replied_{false};
};

} // namespace portal
