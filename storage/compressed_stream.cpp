#include "storage/compressed_stream.hpp"

#include "config/crypto.hpp"

#define ZSTD_STATIC_LINKING_ONLY // ZSTD_getFrameHeader(), exported by libzstd.so
#include <algorithm>
#include <isa-l/igzip_lib.h>
#include <new>
#include <stdexcept>
#include <string>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

namespace portal::storage {

namespace {

constexpr std::size_t out_block = std::size_t{64} * 1024;

failure stream_invalid(std::string message) {
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
  decoder() = default;
  decoder(const decoder&) = delete;
  decoder& operator=(const decoder&) = delete;
  virtual ~decoder() = default;
  virtual failure push(const unsigned char* data, std::size_t size, const block_sink& out) = 0;
  virtual failure finish() = 0;

protected:
  // Each decompressed block is made here before it goes to `out`.
  std::unique_ptr<unsigned char[]> out_{new unsigned char[out_block]};
};

namespace {

// The gzip stream around the members (RFC 1952 §2.2): any number of members,
// then optionally NUL padding to the end (gzip -t ignores it); anything else
// after a member is refused. One place for these rules, whichever inflater
// decodes the members.
class gzip_decoder : public compressed_stream::decoder {
public:
  failure push(const unsigned char* data, std::size_t size, const block_sink& out) final {
    while (size > 0) {
      if (state_ == state::padding) {
        if (std::any_of(data, data + size, [](unsigned char c) { return c != 0; }))
          return trailing();
        return {};
      }
      if (state_ == state::between) {
        if (data[0] == 0) {
          state_ = state::padding;
          continue;
        }
        if (data[0] != 0x1f)
          return trailing();
        next_member();
        state_ = state::member;
      }
      step s;
      if (const char* why = inflate_member(data, size, out, s))
        return stream_invalid("corrupt gzip stream in member " + std::to_string(members_ + 1) +
                              ": " + why);
      if (s.stopped)
        return {};
      data += s.used;
      size -= s.used;
      if (s.member_ended) {
        ++members_;
        state_ = state::between;
      } else if (s.used == 0) {
        // Both inflaters take every byte they are offered (holding what they
        // need more of); one that did not would otherwise lose input here.
        return {error_code::internal, "the gzip inflater stopped taking input"};
      }
    }
    return {};
  }

  failure finish() final {
    if (state_ == state::member)
      return stream_invalid("truncated gzip stream: member " + std::to_string(members_ + 1) +
                            " ends before its trailer");
    return {};
  }

protected:
  struct step {
    std::size_t used = 0;      // input bytes consumed
    bool member_ended = false; // the member's trailer was read and checked
    bool stopped = false;      // `out` returned false
  };
  // Inflates the current member from `data` until the input is used up, the
  // member ends (its CRC-32 and ISIZE checked), or `out` refuses. Returns
  // why the member is corrupt, or nullptr.
  virtual const char* inflate_member(const unsigned char* data, std::size_t size,
                                     const block_sink& out, step& s) = 0;
  // Prepares for a member that starts at the next byte.
  virtual void next_member() = 0;

private:
  static failure trailing() { return stream_invalid("data after the end of the gzip stream"); }

  enum class state { member, between, padding };
  state state_ = state::member;
  uint64_t members_ = 0;
};

// zlib's inflate, the reference inflater (tests hold ISA-L's to it). It
// checks each member's CRC-32 and ISIZE before it reports the member's end
// (Z_STREAM_END).
class zlib_gzip_decoder final : public gzip_decoder {
public:
  zlib_gzip_decoder() {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) // gzip wrapper only
      throw std::bad_alloc();
  }
  ~zlib_gzip_decoder() override { inflateEnd(&z_); }

private:
  const char* inflate_member(const unsigned char* data, std::size_t size, const block_sink& out,
                             step& s) override {
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
        return z_.msg ? z_.msg : "inflate failed";
      std::size_t produced = out_block - z_.avail_out;
      if (produced > 0 && !out(out_.get(), produced)) {
        s.stopped = true;
        return nullptr;
      }
    } while (r == Z_OK && (z_.avail_in > 0 || z_.avail_out == 0));
    s.used = offered - z_.avail_in;
    s.member_ended = r == Z_STREAM_END;
    return nullptr;
  }

  void next_member() override { inflateReset(&z_); }

  z_stream z_{};
};

// ISA-L's inflate (PORTAL_GZIP_INFLATER=isal): about a third of zlib's CPU per
// byte on this hardware (bench/RESULTS.md run 12). zlib still reads each member's
// header, because ISA-L's own header parsing accepts reserved flag bits and
// refuses a correct FHCRC fed a byte at a time; so every header rule is the
// reference's. ISA-L inflates the deflate data from the byte after it and
// checks the trailer's CRC-32 and ISIZE (ISAL_GZIP_NO_HDR_VER) before it
// reports the member finished. Unlike zlib it accepts incomplete Huffman code
// sets (compressed_stream.hpp, gzip_inflater).
class isal_gzip_decoder final : public gzip_decoder {
public:
  isal_gzip_decoder() : s_(std::make_unique<inflate_state>()) {
    if (inflateInit2(&header_, 15 + 16) != Z_OK)
      throw std::bad_alloc();
    next_member();
  }
  ~isal_gzip_decoder() override { inflateEnd(&header_); }

private:
  const char* inflate_member(const unsigned char* data, std::size_t size, const block_sink& out,
                             step& s) override {
    if (in_header_) {
      if (const char* why = read_header(data, size, s.used))
        return why;
      if (in_header_)
        return nullptr;
      data += s.used;
      size -= s.used;
    }
    s_->next_in = const_cast<unsigned char*>(data);
    s_->avail_in = static_cast<uint32_t>(std::min<std::size_t>(size, 1u << 30));
    const uint32_t offered = s_->avail_in;
    while (true) {
      const uint32_t had = s_->avail_in;
      s_->next_out = out_.get();
      s_->avail_out = out_block;
      int r = isal_inflate(s_.get());
      if (r < 0)
        return reason(r);
      std::size_t produced = out_block - s_->avail_out;
      if (produced > 0 && !out(out_.get(), produced)) {
        s.stopped = true;
        return nullptr;
      }
      if (s_->block_state == ISAL_BLOCK_FINISH)
        break;
      if (s_->avail_out != 0 && (s_->avail_in == 0 || (s_->avail_in == had && produced == 0)))
        break; // everything offered is consumed, or held inside the state
    }
    s.used += offered - s_->avail_in;
    s.member_ended = s_->block_state == ISAL_BLOCK_FINISH;
    return nullptr;
  }

  // zlib's inflate with Z_BLOCK returns once the header is read, before the
  // first byte of deflate data (zlib.h: data_type bit 128, no bits held).
  const char* read_header(const unsigned char* data, std::size_t size, std::size_t& used) {
    header_.next_in = const_cast<unsigned char*>(data);
    header_.avail_in = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    unsigned char none[1];
    header_.next_out = none;
    header_.avail_out = sizeof none;
    const uInt offered = header_.avail_in;
    int r = inflate(&header_, Z_BLOCK);
    if (r == Z_MEM_ERROR)
      throw std::bad_alloc();
    if (r != Z_OK && r != Z_BUF_ERROR)
      return header_.msg ? header_.msg : "incorrect header";
    used = offered - header_.avail_in;
    if (header_.data_type & 128) {
      // zlib.h promises no bits held and nothing written here.
      if ((header_.data_type & 63) != 0 || header_.avail_out != sizeof none)
        throw std::logic_error("zlib did not stop at the end of the gzip header");
      in_header_ = false;
    }
    return nullptr;
  }

  void next_member() override {
    inflateReset(&header_);
    isal_inflate_init(s_.get());
    s_->crc_flag = ISAL_GZIP_NO_HDR_VER;
    in_header_ = true;
  }

  // ISA-L's error classes, in zlib's words where one of zlib's messages
  // covers the class (zlib's own are finer: it names the code set or the
  // trailer field).
  static const char* reason(int r) {
    switch (r) {
    case ISAL_INVALID_BLOCK:
      return "invalid block type or lengths";
    case ISAL_INVALID_SYMBOL:
      return "invalid code";
    case ISAL_INVALID_LOOKBACK:
      return "invalid distance too far back";
    case ISAL_INCORRECT_CHECKSUM: // the trailer's CRC-32 or ISIZE: ISA-L does not say which
      return "incorrect data check or length";
    default:
      return "inflate failed";
    }
  }

  z_stream header_{};                // reads the member's header only
  std::unique_ptr<inflate_state> s_; // 85 KiB: ISA-L's tables and its 32 KiB history
  bool in_header_ = true;
};

// zstd through libzstd's streaming decoder, which checks each frame's content
// checksum when the frame has one and passes over skippable frames.
class zstd_decoder final : public compressed_stream::decoder {
public:
  zstd_decoder() : d_(ZSTD_createDCtx()) {
    if (!d_)
      throw std::bad_alloc();
  }
  ~zstd_decoder() override { ZSTD_freeDCtx(d_); }

  failure push(const unsigned char* data, std::size_t size, const block_sink& out) override {
    ZSTD_inBuffer in{data, size, 0};
    ZSTD_outBuffer o{out_.get(), out_block, 0};
    do {
      o.pos = 0;
      bool at_frame_end = left_ == 0;
      std::size_t r = ZSTD_decompressStream(d_, &o, &in);
      if (ZSTD_isError(r)) {
        if (at_frame_end && ZSTD_getErrorCode(r) == ZSTD_error_prefix_unknown)
          return stream_invalid("data after the end of the zstd stream");
        return stream_invalid(std::string("corrupt zstd stream: ") + ZSTD_getErrorName(r));
      }
      left_ = r;
      if (o.pos > 0 && !out(out_.get(), o.pos))
        return {};
    } while (in.pos < in.size || o.pos == o.size);
    return {};
  }

  failure finish() override {
    if (left_ != 0)
      return stream_invalid("truncated zstd stream: the last frame is incomplete");
    return {};
  }

private:
  ZSTD_DCtx* d_;
  std::size_t left_ = 1; // ZSTD_decompressStream's hint: 0 at the end of a frame
};

} // namespace

compressed_stream::compressed_stream(archive_format f, uint64_t max_output, gzip_inflater how)
  : format_(f), max_output_(max_output) {
  if (f == archive_format::tar_gz && how == gzip_inflater::isal)
    decoder_ = std::make_unique<isal_gzip_decoder>();
  else if (f == archive_format::tar_gz)
    decoder_ = std::make_unique<zlib_gzip_decoder>();
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
