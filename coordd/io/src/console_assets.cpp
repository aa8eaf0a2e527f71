#include "coord/io/console_assets.h"

#include <algorithm>
#include <vector>

#include "console_assets_data.h"

namespace coord::io {
namespace {

// Built once from the generated table; sorted, so a lookup is a binary
// search and the listing is in name order.
const std::vector<ConsoleAsset>& table() {
  static const std::vector<ConsoleAsset> assets = [] {
    std::vector<ConsoleAsset> out;
    out.reserve(console_data::file_count);
    for (std::size_t i = 0; i < console_data::file_count; ++i) {
      const console_data::EmbeddedFile& f = console_data::files[i];
      out.push_back(ConsoleAsset{f.name, f.content_type,
                                 std::string_view(reinterpret_cast<const char*>(f.bytes), f.size)});
    }
    std::sort(out.begin(), out.end(),
              [](const ConsoleAsset& a, const ConsoleAsset& b) { return a.name < b.name; });
    return out;
  }();
  return assets;
}

}  // namespace

const ConsoleAsset* find_console_asset(std::string_view name) {
  if (name.empty()) name = "index.html";
  const auto& assets = table();
  const auto it =
      std::lower_bound(assets.begin(), assets.end(), name,
                       [](const ConsoleAsset& a, std::string_view n) { return a.name < n; });
  return it != assets.end() && it->name == name ? &*it : nullptr;
}

std::span<const ConsoleAsset> console_assets() {
  return table();
}

}  // namespace coord::io
