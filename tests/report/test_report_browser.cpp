// Renders a real report (from a synthetic trace through cdma synth, analyze and replay) in headless
// Chromium, takes a screenshot, and checks that the page loaded without script errors and that
// every plot is present and drew something.
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace {

using cdma::test::quote;
using cdma::test::run_command;

std::string chromium() {
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"}) {
    auto r = run_command(std::string("command -v ") + c);
    if (r.exit_code == 0) return c;
  }
  return "";
}

TEST(ReportBrowser, PageRendersWithEveryPlot) {
  std::string browser = chromium();
  ASSERT_FALSE(browser.empty()) << "headless Chromium is needed (Debian package 'chromium', scripts/setup.sh)";
  cdma::test::TempDir dir;
  auto trace = dir / "t.h5";
  auto page = dir / "report.html";
  auto cdma = cdma::test::cdma_binary();
  auto r = run_command(cdma + " synth -o " + quote(trace.string()) + " --layers 5 --iterations 4 --shape 2,8,16,16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(cdma + " report " + quote(trace.string()) + " -o " + quote(page.string()) +
                  " --compute roofline -j 1 --zoo-net alexnet");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  std::string flags =
      " --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=" + quote((dir / "profile").string()) +
      " ";
  auto dom = dir / "dom.html";
  auto png = dir / "shot.png";
  r = run_command("timeout 120 " + browser + flags + "--enable-logging=stderr --v=0 --dump-dom file://" +
                  quote(page.string()) + " >" + quote(dom.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("Uncaught"), std::string::npos) << "script error in the console:\n" << r.output;
  r = run_command("timeout 120 " + browser + flags + "--window-size=1280,4000 --screenshot=" + quote(png.string()) +
                  " file://" + quote(page.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(std::filesystem::exists(png));
  // density heatmap + density line + ratio bars + 2 CDFs + ratio against density + variants bars +
  // iteration-time bars + stall bars
  r = run_command(
      cdma::test::h5py_python() + " " + quote(std::string(CDMA_TEST_REPORT_DIR) + "/check_page.py") + " " +
      quote(dom.string()) + " " + quote(png.string()) +
      " 10 'CDF of per-tensor density' 'CDF of per-tensor ZVC ratio' 'Compression ratio against density' 'cDMA speedup "
      "over vDNN per network' 'Iteration time over the link sweep' 'Density over training of the layers'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// `cdma report A B --compare`: two runs of one network (synthetic, different densities) side by
// side; the comparison figures drew marks, the table shows the per-layer differences.
TEST(ReportBrowser, ComparisonReportRendersItsFigures) {
  std::string browser = chromium();
  ASSERT_FALSE(browser.empty()) << "headless Chromium is needed (Debian package 'chromium', scripts/setup.sh)";
  cdma::test::TempDir dir;
  auto a = dir / "a.h5", b = dir / "b.h5", page = dir / "compare.html";
  auto cdma = cdma::test::cdma_binary();
  for (const auto& [t, d] : {std::pair{a, "0.5"}, std::pair{b, "0.2"}}) {
    auto r = run_command(cdma + " synth -o " + quote(t.string()) +
                         " --layers 4 --iterations 3 --shape 2,8,8,8 --density " + d);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto r = run_command(cdma + " report " + quote(a.string()) + " " + quote(b.string()) +
                       " --compare --no-replay -j 1 -o " + quote(page.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(page);
  std::stringstream html;
  html << in.rdbuf();
  EXPECT_NE(html.str().find("Comparison of runs"), std::string::npos);
  EXPECT_NE(html.str().find("%)</td>"), std::string::npos) << "no per-layer difference in the table";
  std::string flags =
      " --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=" + quote((dir / "profile").string()) +
      " ";
  auto dom = dir / "dom.html", png = dir / "shot.png";
  r = run_command("timeout 120 " + browser + flags + "--dump-dom file://" + quote(page.string()) + " >" +
                  quote(dom.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("timeout 120 " + browser + flags + "--window-size=1280,3000 --screenshot=" + quote(png.string()) +
                  " file://" + quote(page.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(cdma::test::h5py_python() + " " + quote(std::string(CDMA_TEST_REPORT_DIR) + "/check_page.py") + " " +
                  quote(dom.string()) + " " + quote(png.string()) +
                  " 2 'Network density over training, runs overlaid' 'Per-layer zvc ratio of each run'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // One trace is nothing to compare.
  r = run_command(cdma + " report " + quote(a.string()) + " --compare -o " + quote((dir / "x.html").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.html"));
}

TEST(ReportBrowser, FailedRunWritesNoPage) {
  cdma::test::TempDir dir;
  auto page = dir / "report.html";
  auto bad = dir / "bad.h5";
  std::ofstream(bad) << "not a trace";
  auto r = run_command(cdma::test::cdma_binary() + " report " + quote(bad.string()) + " -o " + quote(page.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("bad.h5"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(page));
}

}  // namespace
