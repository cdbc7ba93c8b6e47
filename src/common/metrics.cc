// MetricsRegistry: registration of counters and gauges, and the Prometheus text exposition
// (format 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pinhole {

struct MetricsRegistry::Series {
  // `{a="x",b="y"}` (empty without labels), escaped once at registration so that a scrape only
  // concatenates.
  std::string label_text;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  // shared_ptr: a scrape copies it under the lock and calls it after releasing the lock, while a
  // re-registration may replace it meanwhile; the copy keeps the old function alive for that call.
  std::shared_ptr<const std::function<double()>> read;
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  Type type = Type::kCounter;
  // Registration order, which is the rendering order.
  std::vector<std::unique_ptr<Series>> series;
  // Canonical key (labels sorted by name) -> index in `series`, so {a,b} and {b,a} are one series.
  std::map<std::string, size_t, std::less<>> index;
};

namespace {

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;  // "__" is reserved for Prometheus
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Label values escape backslash, double quote and newline; HELP text escapes backslash and
// newline only (the format's two escaping rules).
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += quote ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

std::string label_text(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    out += labels[i].first;
    out += "=\"";
    append_escaped(out, labels[i].second, true);
    out += '"';
  }
  out += '}';
  return out;
}

// Identity of a label set whatever the order given: sorted by name, each part length-prefixed
// so that no value can forge a separator.
std::string canonical_key(const Labels& labels) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(labels.size());
  for (const auto& l : labels) sorted.push_back(&l);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string key;
  for (const auto* l : sorted) {
    key += fmt::format("{}:{}={}:{};", l->first.size(), l->first, l->second.size(), l->second);
  }
  return key;
}

void check_labels(std::string_view metric, const Labels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!valid_label_name(labels[i].first)) {
      throw std::logic_error(fmt::format("metric {}: invalid label name '{}'", metric, labels[i].first));
    }
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == labels[i].first) {
        throw std::logic_error(fmt::format("metric {}: label '{}' given twice", metric, labels[i].first));
      }
    }
  }
}

// Prometheus reads values with Go's ParseFloat: NaN, +Inf and -Inf have fixed spellings; fmt's
// shortest round-trip form covers the rest.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

}  // namespace

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Series& MetricsRegistry::series(std::string_view name, std::string_view help, Type type,
                                                 const Labels& labels) {
  if (!valid_metric_name(name)) throw std::logic_error(fmt::format("invalid metric name '{}'", name));
  check_labels(name, labels);

  auto it = families_.find(name);
  if (it == families_.end()) {
    auto family = std::make_unique<Family>();
    family->name = std::string(name);
    family->help = std::string(help);
    family->type = type;
    it = families_.emplace(family->name, std::move(family)).first;
  } else if (it->second->type != type) {
    throw std::logic_error(fmt::format("metric {} registered as both counter and gauge", name));
  }
  Family& family = *it->second;

  std::string key = canonical_key(labels);
  auto found = family.index.find(key);
  if (found != family.index.end()) return *family.series[found->second];
  auto s = std::make_unique<Series>();
  s->label_text = label_text(labels);
  family.index.emplace(std::move(key), family.series.size());
  family.series.push_back(std::move(s));
  return *family.series.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kGauge, labels);
  if (s.read) throw std::logic_error(fmt::format("metric {}: gauge and gauge function with the same labels", name));
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

void MetricsRegistry::gauge_function(std::string_view name, std::string_view help, const Labels& labels,
                                     std::function<double()> read) {
  if (!read) throw std::logic_error(fmt::format("metric {}: empty gauge function", name));
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::kGauge, labels);
  if (s.gauge) throw std::logic_error(fmt::format("metric {}: gauge and gauge function with the same labels", name));
  s.read = std::make_shared<const std::function<double()>>(std::move(read));
}

std::string MetricsRegistry::render_prometheus() const {
  // Snapshot under the lock: pointers to the (never removed) families and series, and copies of
  // the read functions, which are then called without the lock.
  struct Line {
    const Series* series;
    std::shared_ptr<const std::function<double()>> read;
  };
  std::vector<std::pair<const Family*, std::vector<Line>>> snapshot;
  {
    std::lock_guard lock(mutex_);
    snapshot.reserve(families_.size());
    for (const auto& [name, family] : families_) {  // std::map: sorted by name
      std::vector<Line> lines;
      lines.reserve(family->series.size());
      for (const auto& s : family->series) lines.push_back({s.get(), s->read});
      snapshot.emplace_back(family.get(), std::move(lines));
    }
  }

  std::string out;
  for (const auto& [family, lines] : snapshot) {
    out += "# HELP ";
    out += family->name;
    out += ' ';
    append_escaped(out, family->help, false);
    out += "\n# TYPE ";
    out += family->name;
    out += family->type == Type::kCounter ? " counter\n" : " gauge\n";
    for (const Line& line : lines) {
      out += family->name;
      out += line.series->label_text;
      out += ' ';
      if (line.series->counter) {
        fmt::format_to(std::back_inserter(out), "{}", line.series->counter->value());
      } else if (line.series->gauge) {
        fmt::format_to(std::back_inserter(out), "{}", line.series->gauge->value());
      } else if (line.read) {
        append_double(out, (*line.read)());
      } else {
        out += '0';  // unreachable: every series gets its object at creation
      }
      out += '\n';
    }
  }
  return out;
}

}  // namespace pinhole
