#include "coord/agent/prometheus.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "coord/base/assert.h"

namespace coord::agent {

namespace {

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also the quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    // Whole numbers (every counter) print without an exponent up to 2^53.
    if (v == std::trunc(v) && std::fabs(v) < 9.007199254740992e15) {
      std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.17g", v);
    }
    out += buf;
  }
}

}  // namespace

void PromText::counter(std::string_view name, std::string_view help, double value,
                       const Labels& labels) {
  sample("counter", name, help, value, labels);
}

void PromText::gauge(std::string_view name, std::string_view help, double value,
                     const Labels& labels) {
  sample("gauge", name, help, value, labels);
}

void PromText::sample(std::string_view type, std::string_view name, std::string_view help,
                      double value, const Labels& labels) {
  COORD_ASSERT(valid_name(name));
  if (names_.empty() || names_.back() != name) {
    COORD_ASSERT(std::find(names_.begin(), names_.end(), name) == names_.end());
    names_.emplace_back(name);
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    append_escaped(out_, help, /*quote=*/false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      COORD_ASSERT(valid_name(labels[i].first));
      if (i > 0) out_ += ',';
      out_ += labels[i].first;
      out_ += "=\"";
      append_escaped(out_, labels[i].second, /*quote=*/true);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  append_value(out_, value);
  out_ += '\n';
}

}  // namespace coord::agent
