#include "coord/testing/golden.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace coord::testing {
namespace {

std::string rstrip(std::string s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.pop_back();
  }
  return s;
}

// Lines of the actual output, normalized so that they fit in a block.
std::string normalize(const std::string& out) {
  std::istringstream in(rstrip(out));
  std::string line;
  std::string result;
  while (std::getline(in, line)) {
    line = rstrip(line);
    if (line.empty()) line = "<empty>";
    result += line;
    result += '\n';
  }
  return result;
}

struct Parsed {
  GoldenCase c;
  std::size_t expected_begin = 0;  // line numbers (0-based) of the expected block
  std::size_t expected_end = 0;
};

}  // namespace

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_quotes = false;
  bool have = false;
  for (char c : line) {
    if (c == '"') {
      in_quotes = !in_quotes;
      have = true;
    } else if (!in_quotes && (c == ' ' || c == '\t')) {
      if (have) words.push_back(cur);
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) words.push_back(cur);
  return words;
}

std::optional<std::string> GoldenCase::get(std::string_view key) const {
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (eq != std::string::npos && std::string_view(a).substr(0, eq) == key) {
      return a.substr(eq + 1);
    }
  }
  return std::nullopt;
}

std::string GoldenCase::get_or(std::string_view key, std::string_view fallback) const {
  auto v = get(key);
  return v ? *v : std::string(fallback);
}

bool GoldenCase::has_flag(std::string_view word) const {
  return std::find(args.begin(), args.end(), word) != args.end();
}

std::vector<std::string> GoldenCase::positional() const {
  std::vector<std::string> out;
  for (const auto& a : args) {
    if (a.find('=') == std::string::npos) out.push_back(a);
  }
  return out;
}

void run_golden_file(const std::string& path, const GoldenHandler& handler) {
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot open golden script " << path;
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    lines.push_back(l);

  std::vector<Parsed> cases;
  std::size_t i = 0;
  while (i < lines.size()) {
    std::string l = rstrip(lines[i]);
    if (l.empty() || l[0] == '#') {
      ++i;
      continue;
    }
    Parsed p;
    p.c.file = path;
    p.c.line = static_cast<int>(i + 1);
    auto words = split_words(l);
    p.c.command = words.front();
    p.c.args.assign(words.begin() + 1, words.end());
    ++i;
    while (i < lines.size() && rstrip(lines[i]) != "----") {
      p.c.input += lines[i] + "\n";
      ++i;
    }
    ASSERT_LT(i, lines.size()) << path << ":" << p.c.line << ": command without ----";
    ++i;
    p.expected_begin = i;
    while (i < lines.size() && !rstrip(lines[i]).empty()) {
      p.c.expected += rstrip(lines[i]) + "\n";
      ++i;
    }
    p.expected_end = i;
    cases.push_back(std::move(p));
  }

  const char* rewrite_env = std::getenv("COORD_REWRITE_GOLDEN");
  const bool rewrite = rewrite_env != nullptr && std::string(rewrite_env) == "1";
  std::vector<std::string> actuals;
  for (const auto& p : cases) {
    std::string actual = normalize(handler(p.c));
    if (!rewrite) {
      EXPECT_EQ(p.c.expected, actual)
          << p.c.file << ":" << p.c.line << ": " << p.c.command << " gave a different output";
    }
    actuals.push_back(std::move(actual));
  }
  if (!rewrite) return;

  std::string out;
  std::size_t next = 0;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    for (; next < cases[k].expected_begin; ++next)
      out += lines[next] + "\n";
    out += actuals[k];
    next = cases[k].expected_end;
  }
  for (; next < lines.size(); ++next)
    out += lines[next] + "\n";
  std::ofstream(path, std::ios::trunc) << out;
}

std::vector<std::string> golden_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace coord::testing
