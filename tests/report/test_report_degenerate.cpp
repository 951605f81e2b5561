// The charts on degenerate data (one value, all values equal, zeros, negatives, huge and tiny
// extremes, infinities) on linear and log axes: each chart returns, in a bounded size, with finite
// coordinates only. Each chart is drawn in a child process under a time (and, without ASan, a
// memory) limit, so that a loop without a bound fails the test instead of hanging it or eating the
// machine's memory. And `cdma report` end to end on a trace of one one-element tensor (ZVC ratio
// exactly 0.5: the log-axis tick loop once started at 0 and multiplied by 10 forever).
#include <cdma/formats/trace.hpp>
#include <cdma/report/svg.hpp>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <sstream>

namespace cdma::report {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

struct Drawn {
  bool ok = false;      // the child returned (no signal, no time-out, no exception)
  std::string svg;      // what it drew
  std::string failure;  // else why not
};

// Runs `draw` in a child process limited to 20 s of CPU and (without ASan, whose shadow memory a
// limit on the address space breaks) 2 GiB of address space; returns its output.
Drawn draw_bounded(const std::function<std::string()>& draw) {
  int fd[2];
  if (pipe(fd) != 0) return {false, {}, "pipe failed"};
  const pid_t pid = fork();
  if (pid < 0) return {false, {}, "fork failed"};
  if (pid == 0) {
    close(fd[0]);
    rlimit cpu{20, 20};
    setrlimit(RLIMIT_CPU, &cpu);
    if (!kAsan) {
      rlimit as{2ull << 30, 2ull << 30};
      setrlimit(RLIMIT_AS, &as);
    }
    alarm(30);
    int rc = 0;
    try {
      const std::string s = draw();
      std::size_t off = 0;
      while (off < s.size()) {
        const ssize_t n = write(fd[1], s.data() + off, s.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
    } catch (...) {
      rc = 3;
    }
    close(fd[1]);
    _exit(rc);
  }
  close(fd[1]);
  Drawn d;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) d.svg.append(buf, static_cast<std::size_t>(n));
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st))
    d.failure = "killed by signal " + std::to_string(WTERMSIG(st)) + " (time or memory limit: an unbounded loop?)";
  else if (WEXITSTATUS(st) != 0)
    d.failure = "exit " + std::to_string(WEXITSTATUS(st)) + " (an exception, e.g. std::bad_alloc)";
  d.ok = d.failure.empty();
  return d;
}

// Every number in the SVG's coordinate attributes is finite, the SVG closes, it is of a sensible
// size and it has a bounded number of tick labels.
void expect_sane(const std::string& what, const Drawn& d) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(d.ok) << d.failure;
  EXPECT_LT(d.svg.size(), 200u * 1024) << "an unbounded number of elements?";
  EXPECT_EQ(d.svg.rfind("</svg>"), d.svg.size() - 6);
  static const std::regex attr(R"~(\b(x|y|x1|x2|y1|y2|cx|cy|width|height|points)="([^"]*)")~");
  static const std::regex bad(R"~(nan|inf)~", std::regex::icase);
  for (auto it = std::sregex_iterator(d.svg.begin(), d.svg.end(), attr); it != std::sregex_iterator(); ++it)
    EXPECT_FALSE(std::regex_search((*it)[2].str(), bad)) << (*it)[0].str();
  std::size_t ticks = 0;
  for (std::size_t p = 0; (p = d.svg.find("class=\"tick\"", p)) != std::string::npos; ++p) ++ticks;
  EXPECT_LT(ticks, 80u);
}

const double kInf = std::numeric_limits<double>::infinity();
const double kMax = std::numeric_limits<double>::max();
const double kDenorm = std::numeric_limits<double>::denorm_min();

// Value sets a careless or hostile trace can produce.
const std::vector<std::pair<std::string, std::vector<double>>>& cases() {
  static const std::vector<std::pair<std::string, std::vector<double>>> c = {
      {"one value 0.5", {0.5}},
      {"one value 1", {1}},
      {"all equal 3", {3, 3, 3}},
      {"all zero", {0, 0, 0}},
      {"one zero", {0}},
      {"negative", {-5, -2, -1}},
      {"negative and positive", {-1e6, 2, 1e6}},
      {"one negative", {-0.5}},
      {"denormal", {kDenorm}},
      {"denormal and zero", {0, kDenorm, 2 * kDenorm}},
      {"tiny", {1e-310, 1e-300, 1e-200}},
      {"huge", {1e300, kMax}},
      {"huge equal", {kMax, kMax}},
      {"lowest and max", {-kMax, kMax}},
      {"lowest", {-kMax}},
      {"tiny to huge", {1e-300, 1e300}},
      {"infinities", {-kInf, 1, kInf}},
      {"only infinity", {kInf}},
      {"near one", {1, std::nextafter(1.0, 2.0)}},
      {"large offset", {1e15, 1e15 + 1}},
  };
  return c;
}

TEST(ReportDegenerate, LineChartLinearAndLogAxes) {
  for (const auto& [name, v] : cases())
    for (int mode = 0; mode < 4; ++mode) {
      Axes a;
      a.log_x = mode & 1;
      a.log_y = mode & 2;
      a.title = "t";
      std::vector<Series> s = {{"values", v, v}};
      std::vector<double> idx;
      for (std::size_t i = 0; i < v.size(); ++i) idx.push_back(static_cast<double>(i + 1));
      s.push_back({"against index", idx, v});
      expect_sane(name + (a.log_x ? " log x" : " linear x") + (a.log_y ? " log y" : " linear y"),
                  draw_bounded([&] { return line_chart(a, s); }));
    }
}

TEST(ReportDegenerate, LineChartWithAxisLimits) {
  // y_min/y_max given by the page (0 and 1 for a CDF) whatever the data.
  for (const auto& [name, v] : cases())
    for (bool log : {false, true}) {
      Axes a;
      a.log_y = log;
      a.log_x = log;
      a.y_min = 0;
      a.y_max = 1;
      std::vector<Series> s = {{"cdf", v, std::vector<double>(v.size(), 1.0)}};
      expect_sane(name + (log ? " log" : " linear"), draw_bounded([&] { return line_chart(a, s); }));
      a.y_min = kMax;  // limits that contradict each other
      a.y_max = -kInf;
      expect_sane(name + " bad limits", draw_bounded([&] { return line_chart(a, s); }));
    }
}

TEST(ReportDegenerate, BarChartLinearAndLog) {
  for (const auto& [name, v] : cases())
    for (bool log : {false, true}) {
      Axes a;
      a.log_y = log;
      std::vector<std::string> cats;
      for (std::size_t i = 0; i < v.size(); ++i) cats.push_back("c" + std::to_string(i));
      std::vector<Series> s = {{"a", {}, v}, {"b", {}, v}};
      expect_sane(name + (log ? " log" : " linear"), draw_bounded([&] { return bar_chart(a, cats, s); }));
    }
}

TEST(ReportDegenerate, TimelineAndHeatmap) {
  for (const auto& [name, v] : cases()) {
    std::vector<Span> spans;
    for (double x : v) spans.push_back({"lane", std::min(x, 0.0), x, 1, "s"});
    expect_sane(name + " timeline", draw_bounded([&] {
                  return timeline_chart(Axes{}, {"lane"}, spans, {{1, "kind"}});
                }));
    expect_sane(name + " heatmap",
                draw_bounded([&] { return heatmap(Axes{}, {"r"}, {"c1"}, {v}, v.front(), v.back()); }));
  }
}

TEST(ReportDegenerate, OneValueGetsTicks) {
  // A single value still gets an axis that shows it: at least one labelled tick on each axis.
  for (bool log : {false, true}) {
    Axes a;
    a.log_x = log;
    a.log_y = log;
    std::vector<Series> s = {{"one", {0.5}, {0.5}}};
    const Drawn d = draw_bounded([&] { return line_chart(a, s); });
    ASSERT_TRUE(d.ok) << d.failure;
    EXPECT_NE(d.svg.find(">0.5</text>"), std::string::npos) << d.svg;
  }
}

// `cdma report` on a trace of one fp32 tensor of one nonzero element: ZVC ratio exactly 0.5 for every
// tensor. Runs under `timeout` and a memory limit (ulimit -v, not under ASan).
TEST(ReportDegenerate, CliReportOnOneElementTrace) {
  test::TempDir dir;
  const auto trace = dir / "one.h5";
  {
    formats::TraceAttrs at;
    at.producer = "test";
    at.source = "synthetic";
    at.model = "one";
    formats::TraceWriter w(trace, at);
    formats::TensorMeta m;
    m.iteration = 0;
    m.layer = "only";
    m.layer_index = 0;
    m.op = "relu";
    m.role = "x";
    m.layout = formats::Layout::NC;
    m.dims = {1, 1};
    m.offload = true;
    const float one = 1.0f;
    w.append_tensor(m, std::as_bytes(std::span<const float>(&one, 1)));
    w.close();
  }
  const auto html = dir / "r.html";
  const std::string limit = kAsan ? "" : "ulimit -v 4000000; ";
  const auto r = test::run_command(limit + "timeout 120 " + test::cdma_binary() + " report " +
                                   test::quote(trace.string()) + " -o " + test::quote(html.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(html);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string page = ss.str();
  EXPECT_NE(page.find("CDF of per-tensor ZVC ratio"), std::string::npos);
  EXPECT_LT(page.size(), 4u << 20);
}

}  // namespace
}  // namespace cdma::report
