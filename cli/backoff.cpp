#include "cli/backoff.hpp"

#include "cli/report.hpp"
#include "cli/tus_client.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

namespace portal::cli {

// Its lines name `what` (a file's path) printable: one line each.
backoff::backoff(const std::string& what, int attempts)
  : what_(printable(what)), attempts_(attempts) {}

std::chrono::milliseconds backoff::delay(int failures) {
  using std::chrono::milliseconds;
  auto ms = milliseconds(500) * (1LL << std::clamp(failures - 1, 0, 16));
  return std::min<milliseconds>(ms, std::chrono::seconds(30));
}

// The last line of a transient failure that did not go away: which work,
// why, and that it was tried (a bare "503 Service Unavailable" said neither).
std::string backoff::gave_up(const std::string& why) const {
  return what_ + ": " + one_line(why) + " (gave up after " + std::to_string(failures_) +
         (failures_ == 1 ? " attempt)" : " attempts)");
}

void backoff::wait_or_rethrow() {
  std::string why;
  std::optional<std::chrono::seconds> retry_after;
  try {
    throw;
  } catch (const tus_status_error& e) {
    if (!e.transient() && e.status != 460)
      throw;
    if (++failures_ >= attempts_)
      throw std::runtime_error(gave_up(e.what()));
    why = e.what();
    retry_after = e.retry_after;
  } catch (const boost::beast::system_error& e) {
    // OpenSSL's own errors (a certificate that does not verify, no common
    // protocol) do not go away by trying again.
    if (e.code().category() == boost::asio::error::get_ssl_category())
      throw std::runtime_error(what_ + ": TLS: " + e.code().message());
    if (++failures_ >= attempts_)
      throw std::runtime_error(gave_up(e.code().message()));
    why = e.code().message();
  }
  std::chrono::milliseconds wait = delay(failures_);
  if (retry_after) {
    wait = std::min<std::chrono::milliseconds>(*retry_after, std::chrono::minutes(5));
  } else {
    static std::minstd_rand jitter{std::random_device{}()};
    wait += std::chrono::milliseconds(jitter() % (wait.count() / 4 + 1));
  }
  std::cerr << "upload-portal push: " << what_ << ": " << one_line(why) << "; retrying in "
            << wait.count() << " ms (attempt " << failures_ + 1 << " of " << attempts_ << ")\n";
  std::this_thread::sleep_for(wait);
}

} // namespace portal::cli
