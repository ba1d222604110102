#include "actors/chunk_pool.hpp"

#include <algorithm>

namespace portal {

chunk_pool::chunk_pool(std::size_t chunk_bytes, std::size_t budget_bytes)
  : chunk_bytes_(chunk_bytes), max_chunks_(std::max<std::size_t>(1, budget_bytes / chunk_bytes)) {}

writable_chunk chunk_pool::acquire(std::function<void()> wake) {
  std::unique_ptr<char[]> data;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (in_use_ >= max_chunks_) {
      waiting_.push_back(std::move(wake));
      return nullptr;
    }
    ++in_use_;
    if (!free_.empty()) {
      data = std::move(free_.back());
      free_.pop_back();
    }
  }
  // Recycled buffers are already faulted in: fresh page-cache-hungry memory
  // costs far more per byte than reusing a warm one.
  if (!data)
    data.reset(new char[chunk_bytes_]);
  auto* c = new chunk{std::move(data), chunk_bytes_, 0};
  auto self = shared_from_this();
  return writable_chunk{c, [self](chunk* p) { self->release(p); }};
}

void chunk_pool::release(chunk* c) {
  std::function<void()> wake;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    --in_use_;
    free_.push_back(std::move(c->data));
    if (!waiting_.empty()) {
      wake = std::move(waiting_.front());
      waiting_.pop_front();
    }
  }
  delete c;
  if (wake)
    wake();
}

std::size_t chunk_pool::release_free() {
  std::vector<std::unique_ptr<char[]>> dropped;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    dropped.swap(free_);
  }
  return dropped.size() * chunk_bytes_; // freed here, outside the lock
}

std::size_t chunk_pool::in_use_bytes() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return in_use_ * chunk_bytes_;
}

} // namespace portal
