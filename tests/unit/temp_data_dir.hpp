// A prepared data dir under the system temp dir (tests only: the product
// never uses /tmp), unique per process and call, removed afterwards.
#pragma once

#include "storage/data_dir.hpp"

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

struct temp_data_dir {
  std::filesystem::path root;
  portal::storage::data_dir_layout layout;
  temp_data_dir() {
    static std::atomic<int> counter{0};
    root = std::filesystem::temp_directory_path() /
           ("portal-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    layout = portal::storage::prepare_data_dir(root);
  }
  ~temp_data_dir() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  temp_data_dir(const temp_data_dir&) = delete;
  temp_data_dir& operator=(const temp_data_dir&) = delete;
};
