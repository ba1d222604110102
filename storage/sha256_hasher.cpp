#include "storage/sha256_hasher.hpp"

#include "config/crypto.hpp"
#include "storage/upload_file.hpp"

#include <openssl/evp.h>

#include <cerrno>

namespace portal::storage {

namespace {

// A failure that is not an errno (OpenSSL): reported as an I/O error so
// callers need only one error type.
[[noreturn]] void throw_crypto(const char* what) {
  throw storage_error(EIO, std::system_category(), std::string("sha256: ") + what);
}

} // namespace

struct sha256_hasher::impl {
  EVP_MD_CTX* md = nullptr;
  ~impl() { EVP_MD_CTX_free(md); }
};

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) {
  impl_->md = EVP_MD_CTX_new();
  if (impl_->md == nullptr)
    throw_crypto("EVP_MD_CTX_new failed");
  if (EVP_DigestInit_ex(impl_->md, EVP_sha256(), nullptr) != 1)
    throw_crypto("EVP_DigestInit_ex failed");
}

sha256_hasher::~sha256_hasher() = default;

void sha256_hasher::update(const void* data, std::size_t size) {
  if (EVP_DigestUpdate(impl_->md, data, size) != 1)
    throw_crypto("EVP_DigestUpdate failed");
}

std::string sha256_hasher::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_DigestFinal_ex(impl_->md, digest, &digest_len) != 1 || digest_len != 32)
    throw_crypto("EVP_DigestFinal_ex failed");
  return crypto::to_hex(digest, digest_len);
}

} // namespace portal::storage
