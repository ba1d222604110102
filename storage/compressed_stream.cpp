#include "storage/compressed_stream.hpp"

#include "config/crypto.hpp"

#define ZSTD_STATIC_LINKING_ONLY // ZSTD_getFrameHeader(), exported by libzstd.so
#include <algorithm>
#include <new>
#include <string>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

namespace portal::storage {

namespace {

constexpr std::size_t out_block = std::size_t{64} * 1024;

failure invalid(std::string message) {
  return {error_code::invalid_archive, std::move(message)};
}

// "1f 8b": the bytes as a reader compares them with the magic numbers.
std::string hex_bytes(const unsigned char* p, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i)
    out += (i ? " " : "") + crypto::to_hex(p + i, 1);
  return out;
}

} // namespace

// Decodes one format. push() hands each decompressed block to `out` and
// returns at once (none) when `out` returns false; finish() checks that the
// stream ended where it may.
struct compressed_stream::decoder {
  virtual ~decoder() = default;
  virtual failure push(const unsigned char* data, std::size_t size, const block_sink& out) = 0;
  virtual failure finish() = 0;
};

namespace {

// gzip through zlib's inflate, which checks each member's CRC-32 and ISIZE
// before it reports the member's end (Z_STREAM_END).
class gzip_decoder final : public compressed_stream::decoder {
public:
  gzip_decoder() : out_(new unsigned char[out_block]) {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) // gzip wrapper only
      throw std::bad_alloc();
  }
  ~gzip_decoder() override { inflateEnd(&z_); }
  gzip_decoder(const gzip_decoder&) = delete;
  gzip_decoder& operator=(const gzip_decoder&) = delete;

  failure push(const unsigned char* data, std::size_t size, const block_sink& out) override {
    while (size > 0) {
      if (state_ == state::padding) {
        if (std::any_of(data, data + size, [](unsigned char c) { return c != 0; }))
          return trailing();
        return {};
      }
      if (state_ == state::between) {
        // After a member: another member, or NUL padding to the end.
        if (data[0] == 0) {
          state_ = state::padding;
          continue;
        }
        if (data[0] != 0x1f)
          return trailing();
        inflateReset(&z_);
        state_ = state::member;
      }
      z_.next_in = const_cast<unsigned char*>(data);
      z_.avail_in = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
      const uInt offered = z_.avail_in;
      int r = Z_OK;
      do {
        z_.next_out = out_.get();
        z_.avail_out = out_block;
        r = inflate(&z_, Z_NO_FLUSH);
        if (r == Z_MEM_ERROR)
          throw std::bad_alloc();
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
          return invalid("corrupt gzip stream in member " + std::to_string(members_ + 1) + ": " +
                         (z_.msg ? z_.msg : "inflate failed"));
        std::size_t produced = out_block - z_.avail_out;
        if (produced > 0 && !out(out_.get(), produced))
          return {};
      } while (r == Z_OK && (z_.avail_in > 0 || z_.avail_out == 0));
      std::size_t used = offered - z_.avail_in;
      data += used;
      size -= used;
      if (r == Z_STREAM_END) {
        ++members_;
        state_ = state::between;
      } else if (used == 0 && r == Z_BUF_ERROR) {
        break; // needs more input than there is (cannot happen with size > 0)
      }
    }
    return {};
  }

  failure finish() override {
    if (state_ == state::member)
      return invalid("truncated gzip stream: member " + std::to_string(members_ + 1) +
                     " ends before its trailer");
    return {};
  }

private:
  static failure trailing() { return invalid("data after the end of the gzip stream"); }

  enum class state { member, between, padding };
  z_stream z_{};
  std::unique_ptr<unsigned char[]> out_;
  state state_ = state::member;
  uint64_t members_ = 0;
};

// zstd through libzstd's streaming decoder, which checks each frame's content
// checksum when the frame has one and passes over skippable frames.
class zstd_decoder final : public compressed_stream::decoder {
public:
  zstd_decoder() : d_(ZSTD_createDCtx()), out_(new unsigned char[out_block]) {
    if (!d_)
      throw std::bad_alloc();
  }
  ~zstd_decoder() override { ZSTD_freeDCtx(d_); }
  zstd_decoder(const zstd_decoder&) = delete;
  zstd_decoder& operator=(const zstd_decoder&) = delete;

  failure push(const unsigned char* data, std::size_t size, const block_sink& out) override {
    ZSTD_inBuffer in{data, size, 0};
    ZSTD_outBuffer o{out_.get(), out_block, 0};
    do {
      o.pos = 0;
      bool at_frame_end = left_ == 0;
      std::size_t r = ZSTD_decompressStream(d_, &o, &in);
      if (ZSTD_isError(r)) {
        if (at_frame_end && ZSTD_getErrorCode(r) == ZSTD_error_prefix_unknown)
          return invalid("data after the end of the zstd stream");
        return invalid(std::string("corrupt zstd stream: ") + ZSTD_getErrorName(r));
      }
      left_ = r;
      if (o.pos > 0 && !out(out_.get(), o.pos))
        return {};
    } while (in.pos < in.size || o.pos == o.size);
    return {};
  }

  failure finish() override {
    if (left_ != 0)
      return invalid("truncated zstd stream: the last frame is incomplete");
    return {};
  }

private:
  ZSTD_DCtx* d_;
  std::unique_ptr<unsigned char[]> out_;
  std::size_t left_ = 1; // ZSTD_decompressStream's hint: 0 at the end of a frame
};

} // namespace

compressed_stream::compressed_stream(archive_format f, uint64_t max_output)
  : format_(f), max_output_(max_output) {
  if (f == archive_format::tar_gz)
    decoder_ = std::make_unique<gzip_decoder>();
  else
    decoder_ = std::make_unique<zstd_decoder>();
}

compressed_stream::~compressed_stream() = default;

failure compressed_stream::push(const char* data, std::size_t size, const block_sink& out) {
  if (done_ || size == 0)
    return {};
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  if (!format_shown_)
    if (auto refused = check_first_bytes(bytes, size)) {
      done_ = true;
      return refused;
    }
  bool over = false;
  bool stopped = false;
  auto counted = [&](const unsigned char* block, std::size_t n) {
    output_ += n;
    if (output_ > max_output_) {
      over = true;
      return false;
    }
    stopped = !out(block, n);
    return !stopped;
  };
  failure refused = decoder_->push(bytes, size, counted);
  if (over)
    refused = {error_code::archive_bomb,
               "the archive decompresses to more than " + std::to_string(max_output_) + " bytes"};
  done_ = refused || stopped;
  return refused;
}

failure compressed_stream::finish() {
  if (done_)
    return {};
  done_ = true;
  if (!format_shown_) {
    std::string want =
      std::string(compression_name(format_)) + " data for a ." + to_string(format_) + " upload";
    if (seen_ > head_have_)
      return {error_code::unsupported_media_type,
              "expected " + want + ", but the body holds only skippable frames"};
    return {error_code::unsupported_media_type, "expected " + want +
                                                  ", but the body is too short (" +
                                                  std::to_string(seen_) + " bytes)"};
  }
  return decoder_->finish();
}

// Looks at the bytes until the format shows, refusing at the first one that
// cannot start it. The same bytes then go to the decoder.
failure compressed_stream::check_first_bytes(const unsigned char* data, std::size_t size) {
  static const unsigned char gzip_magic[] = {0x1f, 0x8b};
  const bool gz = format_ == archive_format::tar_gz;
  for (std::size_t i = 0; i < size && !format_shown_;) {
    if (skipping_ > 0) {
      auto n = std::min<uint64_t>(skipping_, size - i);
      skipping_ -= n;
      seen_ += n;
      i += static_cast<std::size_t>(n);
      continue;
    }
    head_[head_have_++] = data[i++];
    ++seen_;
    bool wrong = false;
    if (gz) {
      wrong = head_[head_have_ - 1] != gzip_magic[head_have_ - 1];
      format_shown_ = !wrong && head_have_ == sizeof gzip_magic;
    } else {
      const unsigned char zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd}; // ZSTD_MAGICNUMBER, LE
      ZSTD_frameHeader header{};
      if (head_have_ == 4 && std::equal(head_, head_ + 4, zstd_magic)) {
        format_shown_ = true;
      } else if (std::size_t r = ZSTD_getFrameHeader(&header, head_, head_have_); ZSTD_isError(r)) {
        wrong = true; // neither a frame's nor a skippable frame's magic
      } else if (r == 0 && header.frameType == ZSTD_skippableFrame) {
        skipping_ = header.frameContentSize;
        head_have_ = 0;
      }
    }
    if (wrong) {
      const uint64_t skipped = seen_ - head_have_;
      // Show the whole magic's worth of what came, as far as this chunk goes.
      const std::size_t magic_size = gz ? 2 : 4;
      while (head_have_ < magic_size && i < size)
        head_[head_have_++] = data[i++];
      std::string where =
        skipped > 0 ? "after " + std::to_string(skipped) + " bytes of skippable frames it has "
                    : "it starts with ";
      return {
        error_code::unsupported_media_type,
        std::string("expected ") +
          (gz ? "gzip data (1f 8b)" : "zstd data (28 b5 2f fd, or skippable frames before it)") +
          " for a ." + to_string(format_) + " upload, but " + where + hex_bytes(head_, head_have_)};
    }
  }
  return {};
}

} // namespace portal::storage
