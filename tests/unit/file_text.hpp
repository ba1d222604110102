// Whole files as strings, for tests (binary mode, no error reporting: a test
// checks what it reads).
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace portal::test {

// The whole content of `p` ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes `text` to `p`, replacing it; returns `p`.
inline std::filesystem::path write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

} // namespace portal::test
