// The open connections, so that shutdown can close the idle ones at once
// and wait for the busy ones to finish (SPEC §9 drain).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace portal {

// What shutdown needs from a connection, whatever stream (plain or TLS)
// it reads from.
class connection {
public:
  virtual ~connection() = default;
  // Shutdown: a connection waiting for its next request is closed now; a
  // busy one closes after its answer.
  virtual void close_if_idle() = 0;
  // Shutdown, after the event loop stopped (no other thread touches the
  // connection then): an upload still streaming is aborted, so its actors end.
  virtual void abort_upload_now() = 0;
};

class connection_registry {
public:
  void add(const std::shared_ptr<connection>& c);
  void remove(const connection* c);
  std::size_t size() const;
  // Calls f for every live connection (outside the lock).
  void for_each(const std::function<void(const std::shared_ptr<connection>&)>& f) const;

private:
  mutable std::mutex mutex_;
  std::map<const connection*, std::weak_ptr<connection>> connections_;
};

} // namespace portal
