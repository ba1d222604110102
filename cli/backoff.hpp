// How `push` retries (issue 12): a failed request is tried again after an
// exponential backoff (0.5 s, 1 s, 2 s ... capped at 30 s, each with up to
// 25 % random jitter) or after the server's Retry-After (capped at 5 min),
// at most `attempts` times in a row. Transient failures are network errors
// (beast::system_error: refused, reset, timed out), 5xx, 423 Locked and
// 429 Too Many Requests (tus_status_error::transient), and 460 (a checksum
// mismatch: the bytes were damaged on the way). Anything else is final,
// TLS errors from OpenSSL (an unverifiable certificate) included.
#pragma once

#include <chrono>
#include <string>

namespace portal::cli {

class backoff {
public:
  // `what` names the work in the line printed before each wait ("push
  // FILE"); `attempts` >= 1.
  explicit backoff(const std::string& what, int attempts = 8);

  // Call from a catch block. Prints one line on stderr and sleeps when the
  // current exception is transient and attempts remain; otherwise rethrows
  // it: a final status as it is, and a transient failure with no attempt
  // left (or a network error) as std::runtime_error naming `what`, the
  // reason and the attempts made.
  void wait_or_rethrow();

  // After a success: the next failure starts the count again.
  void reset() { failures_ = 0; }

  // The wait before attempt `failures` + 1 without Retry-After, jitter aside.
  static std::chrono::milliseconds delay(int failures);

private:
  std::string gave_up(const std::string& why) const;

  std::string what_;
  int attempts_;
  int failures_ = 0;
};

} // namespace portal::cli
