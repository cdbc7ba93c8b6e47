// Parser throughput: pinhole's SIP parser against libosip2 on the same corpus, in one run
// (DESIGN.md §6; method and results in docs/benchmarks.md).
//
// One benchmark iteration parses a message from its bytes, including each parser's own
// allocation and release (pinhole: Message::parse copies into an owned buffer; osip:
// osip_message_init/parse/free), then reads the fields a NAT-traversal edge needs: top Via branch,
// every Via sent-by host and port, From tag and URI host, To tag, Call-ID, CSeq number and method,
// every Contact URI host and expires, every Record-Route URI host, Max-Forwards, Content-Type and
// the body. pinhole parses those headers lazily on first access; osip parses every header in
// osip_message_parse. Both end up having parsed the same fields, which is the job being timed.
//
// Benchmarks: "pinhole/<msg>" and "osip2/<msg>" for each bench/corpus/<msg>.sip, and
// "pinhole/all" / "osip2/all", whose iteration parses the whole corpus once.
//
// After Google Benchmark's report, stdout gets a summary whose LAST line is
//   parser_speedup_vs_osip2 <ratio>
// The ratio is TOTAL-TIME based: CPU time for osip2 to parse the whole corpus once divided by
// CPU time for pinhole to do the same (osip2 ns per message over pinhole ns per message, every
// corpus message weighted once). It is measured after the table, in 15 rounds that each time
// both parsers in short back-to-back slices (order alternating), and is the median of the
// per-round ratios: on a shared machine, two benchmarks run seconds apart can see very different
// loads, two adjacent slices see nearly the same. invite_parses_per_second (pinhole, one core:
// the benchmark is single-threaded) is the median over the same rounds. The table's per-message
// ratios and their geometric mean are printed too (speedup_<msg>, parser_speedup_geomean), for
// reference. All times are thread CPU times, as Google Benchmark's items_per_second uses.
//
// Before timing anything, both parsers' readings of every corpus message are compared field by
// field; a mismatch or a refused message is an error (exit status 1), so the two sides are known
// to do the same work.
//
// Extra flags (taken out before Google Benchmark parses the rest):
//   --corpus=DIR     corpus directory (default: the source tree's bench/corpus)
//   --summary=false  no summary (and none of its measuring), for profiling one benchmark alone
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "osip_parse.h"
#include "sip/message.h"

#ifndef PINHOLE_BENCH_CORPUS_DIR
#define PINHOLE_BENCH_CORPUS_DIR "bench/corpus"
#endif

namespace {

using pinhole::bench::osip_touch;
using pinhole::bench::OsipMessage;
using pinhole::sip::Framing;
using pinhole::sip::Message;

struct CorpusEntry {
  std::string name;   // file name without ".sip"
  std::string bytes;  // the message as it would arrive in a datagram
};

// Sink used while timing: makes every value read observable so the compiler cannot drop the read.
// C strings from osip are passed as pointers, without a strlen: again in osip's favour.
struct BenchSink {
  void str(std::string_view s) {
    benchmark::DoNotOptimize(s.data());
    benchmark::DoNotOptimize(s.size());
  }
  void cstr(const char* s) { benchmark::DoNotOptimize(s); }
  void cstr_joined(const char* a, char /*sep*/, const char* b) {
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  }
  void num(uint64_t v) { benchmark::DoNotOptimize(v); }
  void num_text(const char* s) { benchmark::DoNotOptimize(s); }
  void absent() {}
};

// Sink used once at start-up: records every value as text so the parsers can be compared.
// pinhole's values are views into the message; one that points outside it (a parser or compiler
// bug) is recorded as an error instead of being read.
struct RecordSink {
  std::vector<std::string> fields;
  std::string_view bounds;  // pinhole: the message's bytes; empty: no check (osip's own strings)
  bool out_of_bounds = false;

  void str(std::string_view s) {
    const auto lo = reinterpret_cast<uintptr_t>(bounds.data());
    const auto p = reinterpret_cast<uintptr_t>(s.data());
    if (!bounds.empty() && !s.empty() && (p < lo || s.size() > bounds.size() || p - lo > bounds.size() - s.size())) {
      out_of_bounds = true;
      fields.emplace_back("<view outside the message>");
      return;
    }
    fields.emplace_back(s);
  }
  void cstr(const char* s) { fields.emplace_back(s != nullptr ? s : "<null>"); }
  void cstr_joined(const char* a, char sep, const char* b) {
    std::string f = a != nullptr ? a : "<null>";
    if (b != nullptr) {
      f += sep;
      f += b;
    }
    fields.push_back(std::move(f));
  }
  void num(uint64_t v) { fields.push_back(std::to_string(v)); }
  void num_text(const char* s) {
    if (s == nullptr) {
      absent();
    } else {
      fields.push_back(std::to_string(std::strtoull(s, nullptr, 10)));
    }
  }
  void absent() { fields.emplace_back("-"); }
};

// The pinhole side of the field list in osip_touch() (osip_parse.h): same fields, same order.
// Returns false when pinhole refuses a header.
template <typename Sink>
bool pinhole_touch(const Message& m, Sink& sink) {
  if (m.is_request()) {
    sink.str(m.method_name());
    sink.str(m.request_uri().host);
  } else {
    sink.num(m.status());
  }

  auto vias = m.vias();
  if (!vias.ok() || vias->empty()) return false;
  sink.num(vias->size());
  const auto& top = vias->front();
  if (top.has_branch) {
    sink.str(top.branch);
  } else {
    sink.absent();
  }
  for (const auto& v : *vias) {
    sink.str(v.host);
    if (v.port_text.empty()) {
      sink.absent();
    } else {
      sink.num(v.port);
    }
  }

  auto from = m.from();
  auto to = m.to();
  if (!from.ok() || !to.ok()) return false;
  if ((*from)->has_tag) {
    sink.str((*from)->tag);
  } else {
    sink.absent();
  }
  sink.str((*from)->uri.host);
  if ((*to)->has_tag) {
    sink.str((*to)->tag);
  } else {
    sink.absent();
  }

  auto call_id = m.call_id();
  auto cseq = m.cseq();
  if (!call_id.ok() || !cseq.ok()) return false;
  sink.str(*call_id);
  sink.num(cseq->number);
  sink.str(cseq->method_name);

  auto contacts = m.contacts();
  if (!contacts.ok()) return false;
  sink.num(contacts->size());
  for (const auto& c : *contacts) {
    sink.str(c.uri.host);
    if (c.expires.empty()) {
      sink.absent();
    } else {
      sink.str(c.expires);
    }
  }

  auto rrs = m.record_routes();
  if (!rrs.ok()) return false;
  sink.num(rrs->size());
  for (const auto& rr : *rrs) sink.str(rr.uri.host);

  auto mf = m.max_forwards();
  if (!mf.ok()) return false;
  if (mf->has_value()) {
    sink.num(**mf);
  } else {
    sink.absent();
  }

  auto ct = m.content_type();
  if (!ct.ok()) return false;
  if (ct->has_value()) {
    sink.str((*ct)->type);
    sink.str((*ct)->subtype);
  } else {
    sink.absent();
    sink.absent();
  }

  sink.str(m.body());
  return true;
}

bool pinhole_read(std::string_view bytes, RecordSink& sink) {
  auto r = Message::parse(bytes, Framing::kDatagram);
  if (!r.ok()) return false;
  sink.bounds = (*r)->bytes();
  return pinhole_touch(**r, sink);
}

bool osip_read(std::string_view bytes, RecordSink& sink) {
  OsipMessage m;
  return m.parse(bytes) && osip_touch(m.get(), sink);
}

// ---- the benchmarks ----------------------------------------------------------------------------

void set_counters(benchmark::State& state, const std::vector<const CorpusEntry*>& msgs) {
  size_t bytes = 0;
  for (const CorpusEntry* e : msgs) bytes += e->bytes.size();
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(msgs.size()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}

// One pass over `msgs` with each parser. False if a message was refused (never expected: the
// corpus is cross-checked first).
bool pinhole_pass(const std::vector<const CorpusEntry*>& msgs, BenchSink& sink) {
  bool ok = true;
  for (const CorpusEntry* e : msgs) {
    auto r = Message::parse(e->bytes, Framing::kDatagram);
    if (!r.ok() || !pinhole_touch(**r, sink)) ok = false;
  }
  return ok;
}

bool osip_pass(const std::vector<const CorpusEntry*>& msgs, BenchSink& sink) {
  bool ok = true;
  for (const CorpusEntry* e : msgs) {
    OsipMessage m;
    if (!m.parse(e->bytes) || !osip_touch(m.get(), sink)) ok = false;
  }
  return ok;
}

void bm_pinhole(benchmark::State& state, const std::vector<const CorpusEntry*>& msgs) {
  BenchSink sink;
  bool ok = true;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): Google Benchmark idiom
    if (!pinhole_pass(msgs, sink)) ok = false;
  }
  if (!ok) state.SkipWithError("pinhole refused a corpus message");
  set_counters(state, msgs);
}

void bm_osip(benchmark::State& state, const std::vector<const CorpusEntry*>& msgs) {
  BenchSink sink;
  bool ok = true;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores): Google Benchmark idiom
    if (!osip_pass(msgs, sink)) ok = false;
  }
  if (!ok) state.SkipWithError("osip2 refused a corpus message");
  set_counters(state, msgs);
}

// ---- the summary: interleaved rounds -----------------------------------------------------------
//
// The summary's numbers come from their own measurement rather than from the table above: the
// pinhole and osip2 corpus passes are timed in short alternating slices, so both parsers see the
// same machine load (on a shared machine, two benchmarks run seconds apart can see very
// different loads), and the summary is the median over the rounds.

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Times passes of `pass` for at least `slice` CPU seconds; returns CPU seconds per pass. The
// clock (a system call for thread CPU time, a good fraction of a microsecond) is read only between
// batches that double in size, so its cost stays out of the per-pass time.
template <typename Pass>
double time_slice(Pass&& pass, double slice) {
  uint64_t n = 0;
  uint64_t batch = 1;
  const double start = thread_cpu_seconds();
  double elapsed = 0;
  do {
    for (uint64_t i = 0; i < batch; ++i) pass();
    n += batch;
    batch *= 2;
    elapsed = thread_cpu_seconds() - start;
  } while (elapsed < slice);
  return elapsed / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Summary {
  double pinhole_s_per_pass = 0;  // whole corpus, CPU seconds (median over rounds)
  double osip_s_per_pass = 0;
  double ratio = 0;               // median over rounds of (osip2 / pinhole) per round
  double invite_s_per_parse = 0;  // pinhole, the INVITE alone; 0 without invite.sip
};

constexpr int kSummaryRounds = 15;

Summary measure_summary(const std::vector<const CorpusEntry*>& all, const CorpusEntry* invite, double slice) {
  BenchSink sink;
  auto pinhole_all = [&] { benchmark::DoNotOptimize(pinhole_pass(all, sink)); };
  auto osip_all = [&] { benchmark::DoNotOptimize(osip_pass(all, sink)); };
  std::vector<const CorpusEntry*> one{invite};
  auto pinhole_invite = [&] { benchmark::DoNotOptimize(pinhole_pass(one, sink)); };

  time_slice(pinhole_all, slice / 4);  // warm-up
  time_slice(osip_all, slice / 4);
  std::vector<double> ph, os, ratios, inv;
  for (int round = 0; round < kSummaryRounds; ++round) {
    double p = 0, o = 0;
    if (round % 2 == 0) {  // alternate the order so a trend in the load does not favour either
      p = time_slice(pinhole_all, slice);
      o = time_slice(osip_all, slice);
    } else {
      o = time_slice(osip_all, slice);
      p = time_slice(pinhole_all, slice);
    }
    ph.push_back(p);
    os.push_back(o);
    ratios.push_back(o / p);
    if (invite != nullptr) inv.push_back(time_slice(pinhole_invite, slice));
  }
  Summary s;
  s.pinhole_s_per_pass = median(ph);
  s.osip_s_per_pass = median(os);
  s.ratio = median(ratios);
  if (invite != nullptr) s.invite_s_per_parse = median(inv);
  return s;
}

// ---- capturing results for the summary ---------------------------------------------------------

// Forwards to the display reporter (if any) and keeps, per benchmark, the CPU seconds of one
// iteration (the median when --benchmark_repetitions asks for several).
class CapturingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit CapturingReporter(benchmark::BenchmarkReporter* display) : display_(display) {}

  bool ReportContext(const Context& context) override {
    return display_ == nullptr || display_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string& name = run.run_name.function_name;
      double seconds = run.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(run.time_unit);
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") {
          cpu_seconds_[name] = seconds;
          from_median_[name] = true;
        }
      } else if (!from_median_[name]) {
        cpu_seconds_[name] = seconds;
      }
    }
    if (display_ != nullptr) display_->ReportRuns(runs);
  }
  void Finalize() override {
    if (display_ != nullptr) display_->Finalize();
  }

  // CPU seconds per iteration, or a negative value when the benchmark did not run.
  double cpu_seconds(const std::string& name) const {
    auto it = cpu_seconds_.find(name);
    return it == cpu_seconds_.end() ? -1.0 : it->second;
  }

 private:
  benchmark::BenchmarkReporter* display_;
  std::map<std::string, double> cpu_seconds_;
  std::map<std::string, bool> from_median_;
};

// The reporter Google Benchmark would have picked for --benchmark_format (console by default).
std::unique_ptr<benchmark::BenchmarkReporter> make_display_reporter(std::string_view format) {
  if (format == "json") return std::make_unique<benchmark::JSONReporter>();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // CSV is deprecated, still supported
  if (format == "csv") return std::make_unique<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
  auto opts = isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color : benchmark::ConsoleReporter::OO_None;
  return std::make_unique<benchmark::ConsoleReporter>(opts);
}

bool flag_is_true(std::string_view arg, std::string_view flag) {
  if (arg == flag) return true;
  if (!arg.starts_with(flag) || arg.size() <= flag.size() || arg[flag.size()] != '=') return false;
  std::string_view v = arg.substr(flag.size() + 1);
  return v == "true" || v == "1" || v == "yes" || v == "t" || v == "y";
}

std::vector<CorpusEntry> load_corpus(const std::filesystem::path& dir) {
  std::vector<CorpusEntry> out;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    if (f.path().extension() != ".sip") continue;
    std::ifstream in(f.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    out.push_back({f.path().stem().string(), text.str()});
  }
  std::sort(out.begin(), out.end(), [](const CorpusEntry& a, const CorpusEntry& b) { return a.name < b.name; });
  return out;
}

// Both parsers must accept every message and read the same values from it.
bool cross_check(const std::vector<CorpusEntry>& corpus) {
  bool ok = true;
  for (const CorpusEntry& e : corpus) {
    RecordSink ph, os;
    if (!pinhole_read(e.bytes, ph)) {
      std::cerr << "bench_parser: pinhole refuses corpus message " << e.name << "\n";
      ok = false;
      continue;
    }
    if (!osip_read(e.bytes, os)) {
      std::cerr << "bench_parser: osip2 refuses corpus message " << e.name << "\n";
      ok = false;
      continue;
    }
    if (ph.out_of_bounds) {
      std::cerr << "bench_parser: pinhole returned a view outside the message for " << e.name
                << " (a parser bug or a miscompilation; see docs/benchmarks.md)\n";
    }
    if (ph.fields != os.fields) {
      std::cerr << "bench_parser: the parsers read " << e.name << " differently (pinhole | osip2):\n";
      for (size_t i = 0; i < std::max(ph.fields.size(), os.fields.size()); ++i) {
        std::string_view a = i < ph.fields.size() ? std::string_view(ph.fields[i]) : "<missing>";
        std::string_view b = i < os.fields.size() ? std::string_view(os.fields[i]) : "<missing>";
        std::cerr << (a == b ? "    " : " !! ") << a << " | " << b << "\n";
      }
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flags are taken out before Google Benchmark sees the rest.
  std::string corpus_dir = PINHOLE_BENCH_CORPUS_DIR;
  std::string format = "console";
  bool list_only = false;
  bool summary = true;
  double min_time = 0.5;  // Google Benchmark's default --benchmark_min_time
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.starts_with("--corpus=")) {
      corpus_dir = std::string(a.substr(9));
      continue;
    }
    if (a.starts_with("--summary=")) {
      summary = flag_is_true(a, "--summary");
      continue;
    }
    if (a.starts_with("--benchmark_format=")) format = std::string(a.substr(19));
    if (a.starts_with("--benchmark_min_time=")) {
      // Google Benchmark 1.7.1 takes plain seconds; anything else it rejects itself.
      double t = std::strtod(argv[i] + 21, nullptr);
      if (t > 0) min_time = t;
    }
    if (flag_is_true(a, "--benchmark_list_tests")) list_only = true;
    argv[kept++] = argv[i];
  }
  argc = kept;
  argv[argc] = nullptr;

  const std::vector<CorpusEntry> corpus = load_corpus(corpus_dir);
  if (corpus.empty()) {
    std::cerr << "bench_parser: no .sip files in " << corpus_dir << "\n";
    return 1;
  }
  if (!pinhole::bench::osip_init()) {
    std::cerr << "bench_parser: osip parser_init() failed\n";
    return 1;
  }
  if (!cross_check(corpus)) return 1;

  std::vector<const CorpusEntry*> all;
  for (const CorpusEntry& e : corpus) {
    std::vector<const CorpusEntry*> one{&e};
    benchmark::RegisterBenchmark(("pinhole/" + e.name).c_str(), [one](benchmark::State& st) { bm_pinhole(st, one); });
    benchmark::RegisterBenchmark(("osip2/" + e.name).c_str(), [one](benchmark::State& st) { bm_osip(st, one); });
    all.push_back(&e);
  }
  benchmark::RegisterBenchmark("pinhole/all", [all](benchmark::State& st) { bm_pinhole(st, all); });
  benchmark::RegisterBenchmark("osip2/all", [all](benchmark::State& st) { bm_osip(st, all); });

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  auto display = make_display_reporter(format);
  CapturingReporter reporter(display.get());
  benchmark::RunSpecifiedBenchmarks(&reporter);
  if (list_only || !summary) {
    benchmark::Shutdown();
    return 0;
  }

  const CorpusEntry* invite = nullptr;
  for (const CorpusEntry& e : corpus)
    if (e.name == "invite") invite = &e;
  // A slice per parser and round of min_time/25 (20 ms by default): about 1 s in all by default,
  // a few ms in the smoke test.
  const Summary sum = measure_summary(all, invite, std::max(min_time / 25, 1e-5));
  benchmark::Shutdown();

  const double n_msgs = static_cast<double>(corpus.size());
  std::cout << std::fixed << std::setprecision(1);
  // From the Google Benchmark runs above, when they ran: per-message ratios and their geometric
  // mean (each message counts the same, whatever its size).
  double log_sum = 0;
  size_t ratios = 0;
  for (const CorpusEntry& e : corpus) {
    double p = reporter.cpu_seconds("pinhole/" + e.name), o = reporter.cpu_seconds("osip2/" + e.name);
    if (p <= 0 || o <= 0) continue;
    std::cout << std::setprecision(2) << "speedup_" << e.name << " " << o / p << "\n";
    log_sum += std::log(o / p);
    ++ratios;
  }
  if (ratios == corpus.size()) {
    std::cout << std::setprecision(2) << "parser_speedup_geomean " << std::exp(log_sum / n_msgs) << "\n";
  }
  // From the interleaved rounds (see measure_summary).
  std::cout << std::setprecision(1) << "pinhole_ns_per_message " << sum.pinhole_s_per_pass * 1e9 / n_msgs << "\n"
            << "osip2_ns_per_message " << sum.osip_s_per_pass * 1e9 / n_msgs << "\n";
  if (invite != nullptr) {
    std::cout << std::setprecision(0) << "invite_parses_per_second " << 1.0 / sum.invite_s_per_parse << "\n";
  } else {
    std::cerr << "bench_parser: no invite.sip in the corpus, no invite_parses_per_second\n";
  }
  // Total-time based (see the comment at the top of this file).
  std::cout << std::setprecision(2) << "parser_speedup_vs_osip2 " << sum.ratio << std::endl;
  return 0;
}
