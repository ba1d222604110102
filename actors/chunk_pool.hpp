// Buffers for upload chunks, recycled, under one global byte budget.
//
// A connection takes an empty chunk, fills it from the socket, and hands it
// (as an immutable shared chunk) to the upload actors; the validator and the
// storage writer read the same bytes, never a copy. When the last reference
// goes, the buffer returns to the pool, and a connection waiting for one is
// woken. The budget bounds the memory of all uploads together, however many
// there are; each upload's credit window bounds its own share.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace portal {

struct chunk {
  std::unique_ptr<char[]> data;
  std::size_t capacity = 0;
  std::size_t size = 0; // bytes filled
};

using chunk_ptr = std::shared_ptr<const chunk>;
using writable_chunk = std::shared_ptr<chunk>;

class chunk_pool : public std::enable_shared_from_this<chunk_pool> {
public:
  chunk_pool(std::size_t chunk_bytes, std::size_t budget_bytes);

  std::size_t chunk_bytes() const { return chunk_bytes_; }

  // An empty chunk, or null when the budget is spent; then `wake` runs once
  // (on the thread that returns a buffer) when one may be available.
  writable_chunk acquire(std::function<void()> wake);

  std::size_t in_use_bytes() const;

  // Frees the recycled buffers no upload holds now (the heap_trimmer, once
  // the server is idle: a burst's pool would otherwise stay resident up to
  // the budget). Returns the bytes freed.
  std::size_t release_free();

private:
  void release(chunk* c);

  const std::size_t chunk_bytes_;
  const std::size_t max_chunks_;
  mutable std::mutex mutex_;
  std::size_t in_use_ = 0;
  std::vector<std::unique_ptr<char[]>> free_;
  std::deque<std::function<void()>> waiting_;
};

} // namespace portal

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(portal::chunk_ptr)
