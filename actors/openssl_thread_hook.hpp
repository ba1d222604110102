// Releases OpenSSL's per-thread state when an actor-system thread ends.
//
// OpenSSL 3 keeps an error queue (ERR_STATE, 904 bytes) per thread that
// touched it, freed by a thread-exit handler. CAF 0.17 counts a detached
// actor's thread as finished (dec_detached_threads) before that thread has
// really exited, so a process that returns from main right after the actor
// system stops can end while the handler has not yet run: LeakSanitizer then
// reports the queue as leaked, and a real exit races it. CAF calls
// thread_terminates() on the ending thread itself, before counting it done,
// which is the one place where the release is deterministic.
#pragma once

#include <caf/thread_hook.hpp>

namespace portal {

class openssl_thread_hook final : public caf::thread_hook {
public:
  void init(caf::actor_system&) override;
  void thread_started() override;
  // Calls OPENSSL_thread_stop() for the calling thread.
  void thread_terminates() override;
};

} // namespace portal
