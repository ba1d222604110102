// Streaming SHA-256 (OpenSSL EVP) of bytes as they pass: the stored archives'
// digests (SPEC §6 `sha256`) and the backup manifest's (SPEC §2, §11).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace portal::storage {

class sha256_hasher {
public:
  // Throws storage_error (EIO) when OpenSSL cannot set up the digest.
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;

  // Throws storage_error (EIO) on an OpenSSL failure.
  void update(const void* data, std::size_t size);

  // The digest of everything passed to update(): 64 lowercase hex digits.
  // Call once; throws storage_error (EIO) on an OpenSSL failure.
  std::string hex_digest();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace portal::storage
