// This machine's live tus sessions, by upload id (actors/tus_session.hpp).
// A request for an upload goes to its live session, or spawns one. Sending
// happens under the registry's lock, and a session only retires (idle) under
// that lock with an empty mailbox, so no request is ever sent to a session
// that already decided to stop.
#pragma once

#include "actors/tus_session.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace portal {

class tus_registry : public std::enable_shared_from_this<tus_registry> {
public:
  // Calls `use` (under the lock: it must only send) with the live session of
  // `id`, spawning it with `make` when there is none. A session spawned here
  // is forgotten when it ends in any way, a crash or an admin's kill
  // included, so that no request is ever sent to a dead session.
  void with_session(const std::string& id, const std::function<tus_session_actor()>& make,
                    const std::function<void(const tus_session_actor&)>& use);
  // Calls `use` (under the lock: it must only send) with the live session of
  // `id` and returns true; false, without calling it, when there is none.
  bool with_live_session(const std::string& id,
                         const std::function<void(const tus_session_actor&)>& use);
  // The ids with a live session (the retention reaper leaves them alone).
  std::vector<std::string> live_ids() const;
  // The session `who` of `id` stops if `idle()` still holds under the lock.
  bool retire(const std::string& id, const caf::actor_addr& who, const std::function<bool()>& idle);
  // The session `who` of `id` is over (completed, terminated, failed).
  void forget(const std::string& id, const caf::actor_addr& who);
  // Shutdown: every live session is told to stop.
  void stop_all();

private:
  mutable std::mutex mutex_;
  std::map<std::string, tus_session_actor> live_;
};

} // namespace portal
