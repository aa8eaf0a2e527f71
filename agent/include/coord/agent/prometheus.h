// Prometheus text exposition format (version 0.0.4) for the daemons'
// /metrics: counters and gauges, each name's HELP and TYPE written once
// before its samples, label values escaped.
// Thread safety: none; build one per scrape.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coord::agent {

class PromText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  static constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

  // A name's samples must be added one after another (the format wants a
  // metric's lines together); a name seen again later is asserted against.
  void counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  const std::string& str() const { return out_; }

 private:
  void sample(std::string_view type, std::string_view name, std::string_view help, double value,
              const Labels& labels);

  std::string out_;
  std::vector<std::string> names_;
};

}  // namespace coord::agent
