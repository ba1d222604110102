// Upload chunks for actor tests: `bytes` cut into chunk_ptrs of `size` bytes,
// as a connection would send them.
#pragma once

#include "actors/chunk_pool.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace portal::test {

inline chunk_ptr make_chunk(const std::string& bytes) {
  auto c = std::make_shared<chunk>();
  c->capacity = bytes.size();
  c->size = bytes.size();
  c->data.reset(new char[bytes.size()]);
  std::memcpy(c->data.get(), bytes.data(), bytes.size());
  return c;
}

inline std::vector<chunk_ptr> chunks_of(const std::string& bytes, std::size_t size) {
  std::vector<chunk_ptr> out;
  for (std::size_t at = 0; at < bytes.size(); at += size)
    out.push_back(make_chunk(bytes.substr(at, size)));
  return out;
}

} // namespace portal::test
