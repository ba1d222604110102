// The TLS settings of the main listener (SPEC §8 native TLS): built once at
// start from PORTAL_TLS_CERT and PORTAL_TLS_KEY, shared by every connection.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <memory>

namespace portal {

// TLS 1.2 or newer only; the certificate chain and the private key (PEM)
// from the two files, which must belong together. Throws config_error with
// one line naming the file and OpenSSL's reason, never the files' contents.
std::unique_ptr<boost::asio::ssl::context> make_tls_context(const std::filesystem::path& cert,
                                                            const std::filesystem::path& key);

} // namespace portal
