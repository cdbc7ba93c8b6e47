// MetricsRegistry: exact Prometheus text (format 0.0.4), escaping, identity of label sets,
// concurrent updates, and the start-up bugs that must throw.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace pinhole {
namespace {

TEST(MetricsTest, RendersFamiliesSortedWithHelpAndTypeOnce) {
  MetricsRegistry m;
  m.counter("z_total", "Last family").inc(3);
  m.counter("a_requests_total", "Requests by method", {{"method", "INVITE"}}).inc(2);
  m.counter("a_requests_total", "ignored: help kept from the first call", {{"method", "REGISTER"}}).inc();
  m.gauge("m_open", "Open things").set(-4);
  m.gauge_function("m_ratio", "A read gauge", {{"k", "v"}}, [] { return 1.5; });

  EXPECT_EQ(m.render_prometheus(),
            "# HELP a_requests_total Requests by method\n"
            "# TYPE a_requests_total counter\n"
            "a_requests_total{method=\"INVITE\"} 2\n"
            "a_requests_total{method=\"REGISTER\"} 1\n"
            "# HELP m_open Open things\n"
            "# TYPE m_open gauge\n"
            "m_open -4\n"
            "# HELP m_ratio A read gauge\n"
            "# TYPE m_ratio gauge\n"
            "m_ratio{k=\"v\"} 1.5\n"
            "# HELP z_total Last family\n"
            "# TYPE z_total counter\n"
            "z_total 3\n");
}

TEST(MetricsTest, EmptyRegistryRendersNothing) { EXPECT_EQ(MetricsRegistry().render_prometheus(), ""); }

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry m;
  m.counter("esc_total", "Help with \\ and\nnewline and \"quotes\"", {{"v", "a\\b\"c\nd"}}).inc();
  EXPECT_EQ(m.render_prometheus(),
            "# HELP esc_total Help with \\\\ and\\nnewline and \"quotes\"\n"
            "# TYPE esc_total counter\n"
            "esc_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTest, SameNameAndLabelsGiveTheSameObjectWhateverTheLabelOrder) {
  MetricsRegistry m;
  Counter& a = m.counter("x_total", "x", {{"a", "1"}, {"b", "2"}});
  Counter& b = m.counter("x_total", "x", {{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(&a, &b);
  Counter& other = m.counter("x_total", "x", {{"a", "1"}, {"b", "3"}});
  EXPECT_NE(&a, &other);
  Gauge& g1 = m.gauge("g", "g");
  Gauge& g2 = m.gauge("g", "g");
  EXPECT_EQ(&g1, &g2);
  a.inc();
  // Rendered in the order of the first registration.
  EXPECT_NE(m.render_prometheus().find("x_total{a=\"1\",b=\"2\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, ReferencesStayValidAsTheRegistryGrows) {
  MetricsRegistry m;
  Counter& first = m.counter("first_total", "f");
  std::vector<Counter*> many;
  for (int i = 0; i < 1000; ++i) {
    many.push_back(&m.counter("many_total", "m", {{"i", std::to_string(i)}}));
  }
  first.inc(7);
  EXPECT_EQ(&m.counter("first_total", "f"), &first);
  EXPECT_EQ(m.counter("first_total", "f").value(), 7u);
  EXPECT_EQ(&m.counter("many_total", "m", {{"i", "0"}}), many[0]);
}

TEST(MetricsTest, GaugeFunctionSpecialValuesAndReplacement) {
  MetricsRegistry m;
  m.gauge_function("f", "f", {{"v", "nan"}}, [] { return std::nan(""); });
  m.gauge_function("f", "f", {{"v", "inf"}}, [] { return std::numeric_limits<double>::infinity(); });
  m.gauge_function("f", "f", {{"v", "-inf"}}, [] { return -std::numeric_limits<double>::infinity(); });
  m.gauge_function("f", "f", {{"v", "int"}}, [] { return 1.0; });
  m.gauge_function("f", "f", {{"v", "int"}}, [] { return 42.0; });  // replaces
  EXPECT_EQ(m.render_prometheus(),
            "# HELP f f\n"
            "# TYPE f gauge\n"
            "f{v=\"nan\"} NaN\n"
            "f{v=\"inf\"} +Inf\n"
            "f{v=\"-inf\"} -Inf\n"
            "f{v=\"int\"} 42\n");
}

TEST(MetricsTest, GaugeFunctionMayUseTheRegistryWhileRendering) {
  // The read runs without the registry lock (no self-deadlock).
  MetricsRegistry m;
  m.gauge_function("families", "f", {}, [&m] {
    m.counter("made_during_scrape_total", "x");
    return 1.0;
  });
  EXPECT_NE(m.render_prometheus().find("families 1\n"), std::string::npos);
  EXPECT_NE(m.render_prometheus().find("made_during_scrape_total 0\n"), std::string::npos);
}

TEST(MetricsTest, TypeClashAndInvalidNamesThrow) {
  MetricsRegistry m;
  m.counter("c_total", "c");
  m.gauge("g", "g");
  EXPECT_THROW(m.gauge("c_total", "c"), std::logic_error);
  EXPECT_THROW(m.counter("g", "g"), std::logic_error);
  EXPECT_THROW(m.gauge_function("c_total", "c", {}, [] { return 0.0; }), std::logic_error);
  EXPECT_THROW(m.gauge_function("g", "g", {}, [] { return 0.0; }), std::logic_error);  // a Gauge already
  m.gauge_function("gf", "gf", {}, [] { return 0.0; });
  EXPECT_THROW(m.gauge("gf", "gf"), std::logic_error);  // a function already

  EXPECT_THROW(m.counter("", "x"), std::logic_error);
  EXPECT_THROW(m.counter("1abc", "x"), std::logic_error);
  EXPECT_THROW(m.counter("a-b", "x"), std::logic_error);
  EXPECT_THROW(m.counter("a b", "x"), std::logic_error);
  EXPECT_NO_THROW(m.counter("ns:sub_total", "colons are valid in metric names"));
  EXPECT_THROW(m.counter("ok_total", "x", {{"", "v"}}), std::logic_error);
  EXPECT_THROW(m.counter("ok_total", "x", {{"a:b", "v"}}), std::logic_error);
  EXPECT_THROW(m.counter("ok_total", "x", {{"__reserved", "v"}}), std::logic_error);
  EXPECT_THROW(m.counter("ok_total", "x", {{"9a", "v"}}), std::logic_error);
  EXPECT_THROW(m.counter("ok_total", "x", {{"a", "1"}, {"a", "2"}}), std::logic_error);
  EXPECT_THROW(m.gauge_function("ok", "x", {}, nullptr), std::logic_error);

  // Nothing half-registered shows up.
  EXPECT_EQ(m.render_prometheus().find("ok_total"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsAreExact) {
  MetricsRegistry m;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, t] {
      // Each thread looks the counter up itself (creation races) and updates it; one also scrapes.
      Counter& c = m.counter("hits_total", "h", {{"kind", "shared"}});
      Gauge& g = m.gauge("level", "l");
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.add(1);
        if (t == 0 && i % 10000 == 0) (void)m.render_prometheus();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.counter("hits_total", "h", {{"kind", "shared"}}).value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(m.gauge("level", "l").value(), int64_t{kThreads} * kPerThread);
  EXPECT_NE(m.render_prometheus().find("hits_total{kind=\"shared\"} 800000\n"), std::string::npos);
}

}  // namespace
}  // namespace pinhole
