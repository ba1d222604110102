#include "config/utf8_text.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace portal {

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629 §4, Unicode
// table 3-7), or 0 when s[i] does not start one.
std::size_t sequence_at(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80)
    return 1;
  std::size_t n = c >= 0xc2 && c <= 0xdf   ? 2
                  : c >= 0xe0 && c <= 0xef ? 3
                  : c >= 0xf0 && c <= 0xf4 ? 4
                                           : 0;
  if (n == 0 || s.size() - i < n)
    return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((byte(i + k) & 0xc0) != 0x80)
      return 0;
  const unsigned char second = byte(i + 1);
  if ((c == 0xe0 && second < 0xa0) ||  // overlong 3-byte form
      (c == 0xed && second >= 0xa0) || // UTF-16 surrogates U+D800..U+DFFF
      (c == 0xf0 && second < 0x90) ||  // overlong 4-byte form
      (c == 0xf4 && second >= 0x90))   // above U+10FFFF
    return 0;
  return n;
}

void append_hex_escape(std::string& out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\x";
  out += hex[c >> 4];
  out += hex[c & 15];
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// Appends s[i..] up to `limit` input bytes; returns where it stopped.
std::size_t append_text(std::string& out, std::string_view s, bool escape_controls,
                        std::size_t limit = std::string_view::npos) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = sequence_at(s, i);
    if (i + (n ? n : 1) > limit)
      break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (n == 0) {
      append_hex_escape(out, c);
      i += 1;
    } else if (escape_controls && is_control(c)) {
      if (c == '\n')
        out += "\\n";
      else if (c == '\t')
        out += "\\t";
      else if (c == '\r')
        out += "\\r";
      else
        append_hex_escape(out, c);
      i += 1;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return i;
}

void make_utf8(boost::json::value& v) {
  if (auto* s = v.if_string()) {
    if (!is_utf8(*s))
      *s = utf8_text(*s);
  } else if (auto* a = v.if_array()) {
    for (auto& e : *a)
      make_utf8(e);
  } else if (auto* o = v.if_object()) {
    bool keys_ok = true;
    for (auto& kv : *o) {
      keys_ok = keys_ok && is_utf8(kv.key());
      make_utf8(kv.value());
    }
    if (!keys_ok) {
      boost::json::object fixed;
      for (auto& kv : *o)
        fixed[utf8_text(kv.key())] = std::move(kv.value());
      *o = std::move(fixed);
    }
  }
}

template <class Json>
std::string json_text_of(const Json& j) {
  std::string text = boost::json::serialize(j);
  if (is_utf8(text))
    return text;
  boost::json::value copy = j;
  make_utf8(copy);
  return boost::json::serialize(copy);
}

} // namespace

bool is_utf8(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t n = sequence_at(bytes, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string utf8_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_text(out, bytes, false);
  return out;
}

std::string quoted_text(std::string_view bytes, std::size_t max_bytes) {
  std::string out = "\"";
  std::size_t shown = append_text(out, bytes, true, max_bytes);
  out += '"';
  if (shown < bytes.size())
    out += "...";
  return out;
}

std::string json_text(const boost::json::value& v) {
  return json_text_of(v);
}

std::string json_text(const boost::json::object& o) {
  return json_text_of(o);
}

} // namespace portal
