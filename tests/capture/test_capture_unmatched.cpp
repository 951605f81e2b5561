// What the collector does with records a trace cannot hold as they are: backward calls matched to
// no forward layer (spool layer_index -1: left out, counted, reported; the trace stays readable),
// and paths and names that are not UTF-8 (the JSON summary escapes them and still parses).
#include "capture_fixture.hpp"

#include <cdma/formats/text.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using cdma::capture_test::Capture;
using cdma::capture_test::kCdma;
using cdma::formats::TraceReader;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);  // throws on a file that is not JSON (or not UTF-8)
}

std::string counters(const TraceReader& r) { return r.root_attribute("capture_counters").value_or(""); }

// legacy_net --orphan-backward ends each iteration with a ReLU backward call on buffers no forward
// call used: the interposer gives its records layer_index -1 (layer "relu_bwd"). Its 4 tensors
// (x, y, dy, dx) and its timeline row are left out of the trace, counted in capture_counters,
// the summary and dropped_tensors, and named in a warning; everything else is as without it.
TEST_F(Capture, UnmatchedBackwardCallsAreLeftOutAndReported) {
  const std::string opts = "--phases all --roles all";
  ASSERT_EQ(capture(opts, CDMA_LEGACY_NET, "--iterations 2"), 0) << stderr_text();
  std::size_t want_tensors = 0, want_rows = 0;
  {
    TraceReader base(trace());
    want_tensors = base.tensors().size();
    want_rows = base.timeline().size();
  }
  const fs::path json = dir_ / "summary.json";
  ASSERT_EQ(capture(opts + " --summary-json " + json.string(), CDMA_LEGACY_NET, "--iterations 2 --orphan-backward"), 0)
      << stderr_text();
  TraceReader r(trace());  // before the fix: "layer_index -1 out of range"
  EXPECT_TRUE(r.attrs().complete);
  EXPECT_EQ(r.tensors().size(), want_tensors);
  EXPECT_EQ(r.timeline().size(), want_rows);
  for (const auto& t : r.tensors()) EXPECT_NE(t.layer, "relu_bwd");
  for (const auto& row : r.timeline()) EXPECT_GE(row.layer_index, 0) << row.layer;
  EXPECT_EQ(r.attrs().dropped_tensors.value_or(-1), 8);
  EXPECT_NE(counters(r).find("unmatched_backward_tensors=8"), std::string::npos) << counters(r);
  EXPECT_NE(counters(r).find("unmatched_backward_timeline_rows=2"), std::string::npos) << counters(r);
  EXPECT_NE(stderr_text().find("warning: "), std::string::npos) << stderr_text();
  EXPECT_NE(stderr_text().find("8 tensors, 0 stats rows and 2 timeline rows of backward calls matched to no forward"),
            std::string::npos)
      << stderr_text();
  auto j = read_json(json);
  ASSERT_EQ(j["traces"].size(), 1u);
  const auto& t = j["traces"][0];
  EXPECT_EQ(t["unmatched_backward_tensors"], 8);
  EXPECT_EQ(t["unmatched_backward_stats_rows"], 0);
  EXPECT_EQ(t["unmatched_backward_timeline_rows"], 2);
  ASSERT_EQ(t["warnings"].size(), 1u);
  EXPECT_NE(t["warnings"][0].get<std::string>().find("matched to no forward layer"), std::string::npos);
}

// In-situ mode: the unmatched call's 4 stats rows are left out the same way.
TEST_F(Capture, UnmatchedBackwardStatsRowsAreLeftOut) {
  ASSERT_EQ(capture("--mode insitu --phases all --roles all", CDMA_LEGACY_NET, "--iterations 2 --orphan-backward"), 0)
      << stderr_text();
  TraceReader r(trace());
  ASSERT_TRUE(r.has_stats());
  for (const auto& s : r.stats()) {
    EXPECT_GE(s.layer_index, 0) << s.layer;
    EXPECT_NE(s.layer, "relu_bwd");
  }
  EXPECT_NE(counters(r).find("unmatched_backward_stats_rows=8"), std::string::npos) << counters(r);
  EXPECT_NE(counters(r).find("unmatched_backward_tensors=0"), std::string::npos) << counters(r);
  EXPECT_EQ(r.attrs().dropped_tensors.value_or(-1), 8);
}

// Paths from the command line (output, spool folder) and the spool's command line attribute hold
// a byte that is not UTF-8 (0xFF): the traces are written at those paths, and both JSON summaries
// (capture, then --convert) parse, with the bytes escaped as clean_text() does ("\xFF").
TEST_F(Capture, SummaryJsonOfPathsThatAreNotUtf8) {
  const fs::path out = dir_ / "out\xff.h5", again = dir_ / "again\xff.h5", spools = dir_ / "sp\xff";
  const fs::path j1 = dir_ / "s1.json", j2 = dir_ / "s2.json";
  ASSERT_EQ(sh(kCdma + " capture --keep-spool --spool-dir '" + spools.string() + "' -o '" + out.string() +
               "' --summary-json " + j1.string() + " -- " + CDMA_LEGACY_NET + " --iterations 1 '--tag\xff'"),
            0)
      << stderr_text();
  ASSERT_TRUE(fs::exists(out));
  EXPECT_EQ(TraceReader(out).tensors().size(), 7u);
  ASSERT_EQ(sh(kCdma + " capture --convert '" + spools.string() + "' -o '" + again.string() + "' --summary-json " +
               j2.string()),
            0)
      << stderr_text();
  ASSERT_TRUE(fs::exists(again));
  nlohmann::json a, b;
  ASSERT_NO_THROW(a = read_json(j1));
  ASSERT_NO_THROW(b = read_json(j2));
  ASSERT_EQ(a["traces"].size(), 1u);
  ASSERT_EQ(b["traces"].size(), 1u);
  EXPECT_EQ(a["traces"][0]["trace"], cdma::formats::clean_text(out.string()));
  EXPECT_NE(a["traces"][0]["trace"].get<std::string>().find("out\\xFF.h5"), std::string::npos);
  EXPECT_EQ(b["traces"][0]["trace"], cdma::formats::clean_text(again.string()));
  EXPECT_NE(b["traces"][0]["spool"].get<std::string>().find("sp\\xFF/"), std::string::npos);
  EXPECT_NE(b["traces"][0]["attrs"]["command"].get<std::string>().find("--tag\\xFF"), std::string::npos)
      << b["traces"][0]["attrs"].dump();
}

}  // namespace
