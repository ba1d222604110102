#include "storage/tar_headers.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace portal::storage {

namespace {

constexpr uint64_t block = 512;
constexpr uint64_t max_special_data = uint64_t{1024} * 1024;

uint64_t round_up(uint64_t n) {
  return (n + block - 1) / block * block;
}

failure header_invalid(std::string message) {
  return {error_code::invalid_archive, std::move(message)};
}

// A NUL-terminated header field.
std::string_view field(const unsigned char* h, std::size_t at, std::size_t width) {
  const char* p = reinterpret_cast<const char*>(h + at);
  return {p, static_cast<std::size_t>(std::find(p, p + width, '\0') - p)};
}

// A numeric field as libarchive and GNU tar read it: base-256 when the first
// byte has its high bit (GNU), else octal digits after optional blanks.
// nullopt for a negative base-256 number.
std::optional<uint64_t> number(const unsigned char* h, std::size_t at, std::size_t width) {
  const unsigned char* p = h + at;
  uint64_t n = 0;
  if (p[0] & 0x80) {
    if (p[0] & 0x40)
      return std::nullopt; // negative
    n = p[0] & 0x3f;
    for (std::size_t i = 1; i < width; ++i) {
      if (n >> 56)
        return std::nullopt;
      n = n << 8 | p[i];
    }
    return n;
  }
  std::size_t i = 0;
  while (i < width && (p[i] == ' ' || p[i] == '\t'))
    ++i;
  for (; i < width && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (n >> 60)
      return std::nullopt;
    n = n * 8 + (p[i] - '0');
  }
  return n;
}

// The header checksum as libarchive checks it: the stored octal value is the
// sum of the bytes with the checksum field as blanks, as unsigned or (old
// writers) signed chars.
bool checksum_ok(const unsigned char* h) {
  auto stored = number(h, 148, 8);
  if (!stored)
    return false;
  uint64_t sum = 0;
  int64_t signed_sum = 0;
  for (std::size_t i = 0; i < block; ++i) {
    unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
    sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == sum || static_cast<int64_t>(*stored) == signed_sum;
}

bool all_zero(const unsigned char* p, std::size_t n) {
  return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

// Types whose header carries no data: readers disagree when one claims some.
bool has_no_data(char type) {
  return type >= '1' && type <= '6';
}

void add(std::vector<entry_text>& to, std::string_view text, const char* origin) {
  to.push_back({std::string(text), origin});
}

// A later global record replaces an earlier one (GNU tar applies them in
// order, the last wins); an empty value removes it.
void set_global(std::optional<entry_text>& to, std::string_view text, const char* origin) {
  if (text.empty())
    to.reset();
  else
    to = entry_text{std::string(text), origin};
}

// A C string's worth of `s`: tar readers stop at a NUL.
std::string_view c_string(std::string_view s) {
  return s.substr(0, s.find('\0'));
}

} // namespace

failure tar_headers::scan(const unsigned char* data, std::size_t size) {
  while (size > 0) {
    switch (state_) {
    case state::stopped:
      offset_ += size;
      return {};
    case state::after_end: {
      if (!all_zero(data, size)) {
        state_ = state::stopped;
        return header_invalid("data after the end-of-archive marker");
      }
      offset_ += size;
      return {};
    }
    case state::member_data: {
      auto n = static_cast<std::size_t>(std::min<uint64_t>(skip_, size));
      skip_ -= n;
      offset_ += n;
      data += n;
      size -= n;
      if (skip_ == 0)
        state_ = state::header;
      continue;
    }
    case state::special_data: {
      auto n = static_cast<std::size_t>(std::min<uint64_t>(data_left_, size));
      uint64_t wanted = data_size_ > data_.size() ? data_size_ - data_.size() : 0;
      data_.append(reinterpret_cast<const char*>(data), std::min<uint64_t>(n, wanted));
      data_left_ -= n;
      offset_ += n;
      data += n;
      size -= n;
      if (data_left_ == 0)
        if (auto refused = on_special_data()) {
          state_ = state::stopped;
          return refused;
        }
      continue;
    }
    case state::header:
    case state::sparse_header: {
      auto n = std::min(block - have_, size);
      std::memcpy(block_ + have_, data, n);
      have_ += n;
      offset_ += n;
      data += n;
      size -= n;
      if (have_ < block)
        continue;
      have_ = 0;
      if (auto refused = on_block()) {
        state_ = state::stopped;
        return refused;
      }
      continue;
    }
    }
  }
  return {};
}

failure tar_headers::on_block() {
  const uint64_t at = offset_ - block;
  if (state_ == state::sparse_header) {
    // An old GNU sparse member's extension blocks: more follow while the
    // "isextended" byte is set.
    if (block_[504] == 0)
      state_ = skip_ ? state::member_data : state::header;
    return {};
  }
  if (!in_group_)
    group_ = at;
  if (all_zero(block_, block)) {
    end_ = at;
    state_ = state::after_end;
    return {};
  }
  if (!checksum_ok(block_)) {
    state_ = state::stopped; // libarchive refuses this header itself
    return {};
  }
  auto size = number(block_, 124, 12);
  if (!size) {
    state_ = state::stopped;
    return {};
  }
  const char type = static_cast<char>(block_[156]);
  switch (type) {
  case 'x':
  case 'X':
  case 'g':
  case 'L':
  case 'K':
  case 'V':
    pending_bytes_ += *size;
    if (pending_bytes_ > max_special_data)
      return header_invalid("tar special headers with " + std::to_string(pending_bytes_) +
                            " bytes of data before one member: more than 1 MiB");
    in_group_ = true;
    special_ = type;
    data_.clear();
    data_size_ = *size;
    data_left_ = round_up(*size);
    state_ = data_left_ ? state::special_data : state::header;
    if (!data_left_)
      return on_special_data();
    return {};
  case 'A':
    return header_invalid("a Solaris ACL header ('A'): libarchive reads it as metadata, GNU tar "
                          "extracts it as a file");
  default:
    return on_member_header(type, *size);
  }
}

failure tar_headers::on_special_data() {
  state_ = state::header;
  switch (special_) {
  case 'L':
    add(names_, c_string(data_), "GNU long name");
    break;
  case 'K':
    add(links_, c_string(data_), "GNU long link");
    break;
  case 'x':
  case 'X':
    return add_pax_records(false);
  case 'g':
    return add_pax_records(true);
  default: // 'V': a volume label, no file
    break;
  }
  return {};
}

// "<length> <keyword>=<value>\n" records (POSIX pax, "extended header").
// A malformed record ends the reading of this header: libarchive refuses it.
failure tar_headers::add_pax_records(bool global) {
  std::string_view rest = data_;
  while (!rest.empty()) {
    auto space = rest.find(' ');
    if (space == 0 || space == std::string_view::npos || space > 20)
      break;
    uint64_t length = 0;
    bool digits = true;
    for (char c : rest.substr(0, space)) {
      digits = digits && c >= '0' && c <= '9';
      length = length * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!digits || length <= space + 1 || length > rest.size() || rest[length - 1] != '\n')
      break;
    auto record = rest.substr(space + 1, length - space - 2);
    rest.remove_prefix(length);
    auto eq = record.find('=');
    if (eq == std::string_view::npos)
      break;
    auto key = record.substr(0, eq);
    auto value = c_string(record.substr(eq + 1));
    if (key == "path" && global)
      set_global(global_name_, value, "pax global path");
    else if (key == "path")
      add(names_, value, "pax path");
    else if (key == "linkpath" && global)
      set_global(global_link_, value, "pax global linkpath");
    else if (key == "linkpath")
      add(links_, value, "pax linkpath");
    else if (key == "GNU.sparse.name" && !global)
      add(names_, value, "GNU.sparse.name");
    else if (key == "size") {
      if (global)
        return header_invalid("a pax global header with a size record: GNU tar applies it to every "
                              "later member, libarchive ignores it");
      uint64_t n = 0;
      bool ok = !value.empty() && value.size() <= 19;
      for (char c : value) {
        ok = ok && c >= '0' && c <= '9';
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (!ok)
        return header_invalid("a pax size record that is not a decimal number");
      if (pax_size_ && *pax_size_ != n)
        return header_invalid("pax size records that disagree");
      pax_size_ = n;
    }
  }
  return {};
}

failure tar_headers::on_member_header(char type, uint64_t header_size) {
  member_headers m;
  m.position = group_;
  m.typeflag = type;
  std::string_view name = field(block_, 0, 100);
  std::string ustar_name(name);
  if (std::memcmp(block_ + 257, "ustar\0", 6) == 0) {
    auto prefix = field(block_, 345, 155);
    if (!prefix.empty())
      ustar_name = std::string(prefix) + "/" + std::string(name);
  }
  m.names.insert(m.names.end(), names_.begin(), names_.end());
  if (global_name_)
    m.names.push_back(*global_name_);
  // An empty ustar field beside another source is no reading of its own.
  if (!ustar_name.empty() || m.names.empty())
    m.names.insert(m.names.begin(), {ustar_name, "ustar name"});
  m.links.insert(m.links.end(), links_.begin(), links_.end());
  if (global_link_)
    m.links.push_back(*global_link_);
  auto linkname = field(block_, 157, 100);
  if (!linkname.empty() || m.links.empty())
    m.links.insert(m.links.begin(), {std::string(linkname), "ustar linkname"});

  uint64_t size = pax_size_.value_or(header_size);
  names_.clear();
  links_.clear();
  pending_bytes_ = 0;
  pax_size_.reset();
  in_group_ = false;
  if (has_no_data(type) && size != 0)
    return header_invalid("a tar header of type '" + std::string(1, type) + "' with a size of " +
                          std::to_string(size) +
                          " bytes: tar readers disagree on whether data follows");
  members_.push_back(std::move(m));
  skip_ = round_up(size);
  if (type == 'S' && block_[482] != 0)
    state_ = state::sparse_header;
  else
    state_ = skip_ ? state::member_data : state::header;
  return {};
}

failure tar_headers::finish() const {
  if (state_ == state::stopped && !end_)
    return {};
  if (!end_ || offset_ < *end_ + 2 * block)
    return header_invalid("missing end-of-archive marker (two zero blocks after the last entry)");
  return {};
}

std::optional<member_headers> tar_headers::take(uint64_t position) {
  if (members_.empty() || members_.front().position != position)
    return std::nullopt;
  auto m = std::move(members_.front());
  members_.pop_front();
  return m;
}

} // namespace portal::storage
