#include "storage/entry_policy.hpp"

#include "config/utf8_text.hpp"

#include <algorithm>

namespace portal::storage {

namespace {

// Symlinks kept for the end-of-walk resolution: bounded so an archive of
// nothing but long symlinks cannot make the check itself a memory bomb.
constexpr std::size_t max_symlink_bytes = std::size_t{16} * 1024 * 1024;
constexpr int max_link_expansions = 40; // as the kernel's ELOOP limit
constexpr uint64_t max_resolution_steps = uint64_t{16} * 1024 * 1024;

bool is_control(unsigned char c) {
  return (c >= 0x01 && c <= 0x1f) || c == 0x7f;
}

// A name or target as the message shows it, with the header it came from.
std::string shown(const entry_text& t) {
  return quoted_text(t.text) + (t.origin.empty() ? "" : " (" + t.origin + ")");
}

failure unsafe(const entry_text& entry, const std::string& why) {
  return {error_code::unsafe_entry, "unsafe entry " + shown(entry) + ": " + why};
}

// Path components without the empty and "." ones; ".." is kept.
std::vector<std::string_view> components(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty()) {
    auto slash = p.find('/');
    auto c = p.substr(0, slash);
    if (!c.empty() && c != ".")
      out.push_back(c);
    if (slash == std::string_view::npos)
      break;
    p.remove_prefix(slash + 1);
  }
  return out;
}

std::string join(const std::vector<std::string_view>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i)
      out += '/';
    out.append(parts[i]);
  }
  return out;
}

bool has_dotdot(const std::vector<std::string_view>& parts) {
  return std::find(parts.begin(), parts.end(), "..") != parts.end();
}

// The SPEC §5.3 name rules, for an entry's name or a link's target.
std::optional<std::string> name_problem(std::string_view name, const char* what) {
  if (name.empty())
    return std::string("empty ") + what;
  for (unsigned char c : name)
    if (is_control(c))
      return std::string("control character in ") + what;
  return std::nullopt;
}

std::size_t prefix_hash(std::size_t h, std::string_view component, bool first) {
  // FNV-1a over "a/b/c", extended one component at a time, so checking every
  // prefix of a deep path stays linear in its length.
  constexpr std::size_t prime = sizeof(std::size_t) == 8 ? 1099511628211ULL : 16777619U;
  auto mix = [&](unsigned char c) { h = (h ^ c) * prime; };
  if (!first)
    mix('/');
  for (unsigned char c : component)
    mix(c);
  return h;
}
constexpr std::size_t hash_seed = sizeof(std::size_t) == 8 ? 14695981039346656037ULL : 2166136261U;

const char* type_problem(entry_type t) {
  switch (t) {
  case entry_type::file:
  case entry_type::directory:
  case entry_type::symlink:
  case entry_type::hardlink:
    return nullptr;
  case entry_type::char_device:
    return "character device";
  case entry_type::block_device:
    return "block device";
  case entry_type::fifo:
    return "FIFO";
  case entry_type::socket:
    return "socket";
  case entry_type::unknown:
    break;
  }
  return "unsupported entry type";
}

} // namespace

std::optional<std::string>
entry_policy::through_symlink(const std::vector<std::string_view>& parts) const {
  if (symlinks_.empty())
    return std::nullopt;
  std::size_t h = hash_seed;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    h = prefix_hash(h, parts[i], i == 0);
    if (!symlink_hashes_.count(h))
      continue;
    std::string prefix = join(parts, i + 1);
    if (symlinks_.count(prefix))
      return prefix;
  }
  return std::nullopt;
}

failure entry_policy::check(const tar_entry& e) {
  if (e.names.empty())
    return {error_code::invalid_archive, "an entry has no readable name"};
  for (const auto& n : e.names) {
    if (auto why = name_problem(n.text, "name"))
      return unsafe(n, *why);
    if (n.text.front() == '/')
      return unsafe(n, "absolute path");
    if (has_dotdot(components(n.text)))
      return unsafe(n, "\"..\" path component");
  }
  if (const char* why = type_problem(e.type))
    return unsafe(e.names.front(), why);
  for (const auto& n : e.names) {
    auto parts = components(n.text);
    if (parts.empty() && e.type != entry_type::directory)
      return unsafe(n, "replaces the archive root");
    if (auto link = through_symlink(parts))
      return unsafe(n, "path goes through the symlink " + quoted_text(*link));
  }

  // The symlink targets this member creates at each of its names.
  std::vector<std::string> targets;
  std::string what = "symlink target";
  if (e.type == entry_type::hardlink) {
    if (e.links.empty())
      return unsafe(e.names.front(), "hardlink without a target");
    for (const auto& n : e.names)
      for (const auto& l : e.links)
        if (auto refused = check_hardlink(n, l))
          return refused;
    for (const auto& l : e.links) {
      auto parts = components(l.text);
      auto it = symlinks_.find(join(parts, parts.size()));
      if (it == symlinks_.end())
        continue;
      targets.insert(targets.end(), it->second.begin(), it->second.end());
      what = "hardlink to the symlink " + quoted_text(it->first) + ", whose target";
    }
  } else if (e.type == entry_type::symlink) {
    if (e.links.empty())
      return unsafe(e.names.front(), "symlink without a target");
    for (const auto& l : e.links) {
      if (auto why = name_problem(l.text, "symlink target"))
        return unsafe(e.names.front(), *why + " " + shown(l));
      targets.push_back(l.text);
    }
  }
  if (targets.empty())
    return {};
  for (const auto& n : e.names) {
    auto parts = components(n.text);
    for (const auto& t : targets)
      if (auto refused = check_symlink(n, parts, t, what))
        return refused;
  }
  for (const auto& n : e.names)
    remember(components(n.text), targets);
  if (symlink_bytes_ > max_symlink_bytes)
    return {error_code::archive_bomb, "too many or too long symlinks to verify"};
  return {};
}

failure entry_policy::check_symlink(const entry_text& name,
                                    const std::vector<std::string_view>& parts,
                                    std::string_view target, const std::string& what) const {
  if (parts.empty())
    return unsafe(name, "symlink replaces the archive root");
  if (target.front() == '/')
    return unsafe(name, "absolute " + what + " " + quoted_text(target));
  // Lexically, from the symlink's own directory; chains through other
  // symlinks are resolved in check_symlink_chains().
  std::size_t depth = parts.size() - 1;
  for (auto c : components(target)) {
    if (c != "..")
      ++depth;
    else if (depth-- == 0)
      return unsafe(name, what + " " + quoted_text(target) + " points outside the archive");
  }
  return {};
}

failure entry_policy::check_hardlink(const entry_text& name, const entry_text& target) const {
  if (auto why = name_problem(target.text, "hardlink target"))
    return unsafe(name, *why + " " + shown(target));
  if (target.text.front() == '/')
    return unsafe(name, "absolute hardlink target " + shown(target));
  auto parts = components(target.text);
  if (has_dotdot(parts))
    return unsafe(name, "hardlink target " + shown(target) + " has a \"..\" component");
  if (parts.empty())
    return unsafe(name, "hardlink to the archive root");
  if (auto link = through_symlink(parts))
    return unsafe(name, "hardlink target goes through the symlink " + quoted_text(*link));
  return {};
}

void entry_policy::remember(const std::vector<std::string_view>& parts,
                            const std::vector<std::string>& targets) {
  auto [it, added] = symlinks_.try_emplace(join(parts, parts.size()));
  if (added) {
    symlink_bytes_ += it->first.size();
    std::size_t h = hash_seed;
    for (std::size_t i = 0; i < parts.size(); ++i)
      h = prefix_hash(h, parts[i], i == 0);
    symlink_hashes_.insert(h);
  }
  auto& known = it->second;
  for (const auto& t : targets) {
    if (std::find(known.begin(), known.end(), t) != known.end())
      continue;
    known.push_back(t);
    symlink_bytes_ += t.size() + sizeof(std::string);
  }
}

// Follows the components in `todo` (reversed: the next at the back) from
// `path` as the kernel would once everything is extracted, expanding the
// archive's symlinks met on the way (not the last component: a symlink there
// is checked on its own). A path with several targets is followed along each.
entry_policy::resolution entry_policy::resolve(std::vector<std::string> path,
                                               std::vector<std::size_t> hashes,
                                               std::vector<std::string> todo, int expansions,
                                               uint64_t& steps) const {
  auto queue = [](std::vector<std::string>& to, std::string_view target) {
    auto parts = components(target);
    for (auto p = parts.rbegin(); p != parts.rend(); ++p)
      to.emplace_back(*p);
  };
  while (!todo.empty()) {
    if (++steps > max_resolution_steps)
      return resolution::too_costly;
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c == "..") {
      if (path.empty())
        return resolution::outside;
      path.pop_back();
      hashes.pop_back();
      continue;
    }
    hashes.push_back(prefix_hash(path.empty() ? hash_seed : hashes.back(), c, path.empty()));
    path.push_back(std::move(c));
    if (todo.empty() || !symlink_hashes_.count(hashes.back()))
      continue;
    std::string joined;
    for (const auto& p : path)
      joined += (joined.empty() ? "" : "/") + p;
    steps += joined.size() / 16;
    auto it = symlinks_.find(joined);
    if (it == symlinks_.end())
      continue;
    if (++expansions > max_link_expansions)
      return resolution::loop;
    path.pop_back();
    hashes.pop_back();
    const auto& targets = it->second;
    for (std::size_t i = 1; i < targets.size(); ++i) {
      if (targets[i].front() == '/')
        return resolution::outside;
      steps += path.size() + todo.size();
      auto other = todo;
      queue(other, targets[i]);
      auto r = resolve(path, hashes, std::move(other), expansions, steps);
      if (r != resolution::inside)
        return r;
    }
    if (targets.front().front() == '/')
      return resolution::outside;
    queue(todo, targets.front());
  }
  return resolution::inside;
}

failure entry_policy::check_symlink_chains() const {
  uint64_t steps = 0;
  for (const auto& [path, targets] : symlinks_) {
    auto parts = components(path);
    parts.pop_back();
    std::vector<std::string> dir(parts.begin(), parts.end());
    std::vector<std::size_t> hashes;
    for (std::size_t i = 0; i < dir.size(); ++i)
      hashes.push_back(prefix_hash(i ? hashes.back() : hash_seed, dir[i], i == 0));
    for (const auto& target : targets) {
      std::vector<std::string> todo;
      auto t = components(target);
      for (auto p = t.rbegin(); p != t.rend(); ++p)
        todo.emplace_back(*p);
      entry_text link{path, ""};
      switch (resolve(dir, hashes, std::move(todo), 0, steps)) {
      case resolution::inside:
        break;
      case resolution::outside:
        return unsafe(link, "symlink target " + quoted_text(target) +
                              " resolves outside the archive through other symlinks");
      case resolution::loop:
        return unsafe(link, "symlink target " + quoted_text(target) + " is a symlink loop");
      case resolution::too_costly:
        return {error_code::archive_bomb, "symlinks too deeply chained to verify"};
      }
    }
  }
  return {};
}

} // namespace portal::storage
