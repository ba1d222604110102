#include "actors/actor_probe.hpp"

namespace portal {

const char* to_string(actor_activity a) {
  switch (a) {
  case actor_activity::idle:
    return "idle";
  case actor_activity::busy:
    return "busy";
  case actor_activity::waiting:
    return "waiting";
  }
  return "idle";
}

} // namespace portal
