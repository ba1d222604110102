#include "net/tls_context.hpp"

#include "config/config.hpp"

#include <openssl/ssl.h>

#include <string>

namespace portal {

namespace {

namespace ssl = boost::asio::ssl;

[[noreturn]] void refuse(const char* variable, const std::filesystem::path& file, const char* what,
                         const boost::system::error_code& ec) {
  throw config_error(std::string{variable} + ": " + what + " \"" + file.string() +
                     "\": " + ec.message());
}

} // namespace

std::unique_ptr<ssl::context> make_tls_context(const std::filesystem::path& cert,
                                               const std::filesystem::path& key) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  // Stated here, not left to /etc/ssl/openssl.cnf, which differs between
  // the build machine and the image.
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // Client-initiated renegotiation costs the server a handshake per request
  // of the client's: a cheap denial of service, and nothing needs it.
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   SSL_OP_NO_RENEGOTIATION);
  // An encrypted key would make OpenSSL ask for a passphrase on the
  // terminal, and the server would hang at start instead of refusing.
  ctx->set_password_callback(
    [](std::size_t, ssl::context::password_purpose) { return std::string{}; });

  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert.string(), ec);
  if (ec)
    refuse("PORTAL_TLS_CERT", cert, "cannot use the certificate chain in", ec);
  // OpenSSL also checks here that the key belongs to the certificate
  // loaded above ("key values mismatch").
  ctx->use_private_key_file(key.string(), ssl::context::pem, ec);
  if (ec)
    refuse("PORTAL_TLS_KEY", key, "cannot use the private key in", ec);
  return ctx;
}

} // namespace portal
