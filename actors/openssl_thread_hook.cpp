#include "actors/openssl_thread_hook.hpp"

#include <openssl/crypto.h>

namespace portal {

void openssl_thread_hook::init(caf::actor_system&) {}

void openssl_thread_hook::thread_started() {}

void openssl_thread_hook::thread_terminates() {
  OPENSSL_thread_stop();
}

} // namespace portal
