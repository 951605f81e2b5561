// Reliability of the analysis and of `cdma analyze` / `info` / `synth` (issue 13): a bad tensor is
// skipped alone with -k, counts that overflow are errors, the JSON is nlohmann's own rendering
// even when streamed, no output is lost silently, and bad command-line values exit 2.
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#include <fstream>
#include <sstream>

namespace cdma::analyze {
namespace {

using test::quote;
using test::run_command;

std::string cdma() { return quote(test::cdma_binary()); }

class AnalyzeReliability : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path damaged(const std::string& kind) {
    auto p = dir / (kind + ".h5");
    auto r =
        run_command(quote(test::h5py_python()) + " " + quote(std::string(CDMA_TEST_FORMATS_DIR) + "/h5py_damaged.py") +
                    " " + quote(p.string()) + " " + kind);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return p;
  }
  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
};

TEST_F(AnalyzeReliability, KeepGoingSkipsTheBadTensorNotItsFile) {
  const auto p = damaged("in-flight-complete");  // tensor 1 lacks 'iteration' in a complete file
  EXPECT_THROW(run_analysis({p}, Options{}), formats::TraceError);
  Options o;
  o.keep_going = true;
  const auto a = run_analysis({p}, o);
  ASSERT_EQ(a.tensors.size(), 1u);
  EXPECT_EQ(a.tensors[0].info.name, "0000000000");
  ASSERT_EQ(a.traces[0].skipped.size(), 1u);
  EXPECT_EQ(a.traces[0].skipped[0].object, "/tensors/0000000001");
  auto r = run_command(cdma() + " analyze -k -q " + quote(p.string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;  // analysed what it could, and says what it left out
  EXPECT_NE(r.output.find("skipped " + p.string() + ": /tensors/0000000001: missing required attribute 'iteration'"),
            std::string::npos)
      << r.output;
}

TEST_F(AnalyzeReliability, IncompleteFileKeepsEveryWholeTensor) {
  const auto p = damaged("in-flight");  // complete = 0, the tensor in flight lacks 'iteration'
  const auto a = run_analysis({p}, Options{});
  ASSERT_EQ(a.tensors.size(), 1u);
  ASSERT_EQ(a.traces[0].warnings.size(), 2u);
  auto r = run_command(cdma() + " analyze -q " + quote(p.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("left out"), std::string::npos) << r.output;
}

TEST_F(AnalyzeReliability, StatsRowOfHugeCountsIsAnErrorNamingIt) {
  const auto p = damaged("stats-huge");  // a /stats row of 2^62 float32 elements: 2^64 bytes
  try {
    run_analysis({p}, Options{});
    FAIL() << "accepted";
  } catch (const formats::TraceError& e) {
    EXPECT_EQ(e.object(), "/stats[0]");
    EXPECT_NE(std::string(e.what()).find("2^62"), std::string::npos) << e.what();
  }
  Options o;
  o.keep_going = true;
  const auto a = run_analysis({p}, o);
  ASSERT_EQ(a.traces[0].skipped.size(), 1u);
  EXPECT_EQ(a.traces[0].skipped[0].object, "/stats[0]");
  EXPECT_EQ(a.tensors.size(), 2u);  // the two tensors are analysed
}

TEST_F(AnalyzeReliability, ThreadCountIsBounded) {
  const auto p = damaged("good");
  Options o;
  o.threads = kMaxThreads + 1;
  EXPECT_THROW(run_analysis({p}, o), formats::Error);
  o.threads = 0;
  EXPECT_LE(run_analysis({p}, o).stats.threads, kMaxThreads);
}

// write_json streams rows one at a time; the bytes must be exactly nlohmann's dump of the document.
TEST_F(AnalyzeReliability, StreamedJsonIsNlohmannsOwnRendering) {
  const auto p = damaged("bad-utf8-layer");
  Options o;
  o.dtypes = {"stored", "float16"};
  const auto a = run_analysis({p, damaged("good")}, o);
  for (int indent : {1, 2, 0, -1}) {
    std::ostringstream os;
    write_json(os, a, indent);
    const auto doc = nlohmann::ordered_json::parse(os.str());
    EXPECT_EQ(os.str(), doc.dump(indent) + "\n") << "indent " << indent;
    EXPECT_EQ(doc["tensor"].size(), 8u);
  }
}

TEST_F(AnalyzeReliability, NoOutputIsLostSilently) {
  const auto p = damaged("good");
  const std::string t = quote(p.string());
  // More output than stdio buffers, so that writes fail while the verb prints (not only at exit).
  const std::string big = quote((dir / "many.h5").string());
  ASSERT_EQ(run_command(cdma() + " synth -o " + big + " --shape 2,1 --layers 300").exit_code, 0);
  // A full disk on stdout is an error, for every verb that prints.
  for (const std::string& cmd :
       std::vector<std::string>{" analyze " + t, " analyze -q --csv - " + t, " analyze -q --json - " + t, " info " + t,
                                " info --json " + t, " info --tensors " + big, " --help", " analyze --help"}) {
    auto r = run_command("{ " + cdma() + cmd + " > /dev/full; }");
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output;
    EXPECT_TRUE(r.output.find("standard output") != std::string::npos ||
                r.output.find("cannot write its output") != std::string::npos)
        << cmd << "\n"
        << r.output;
  }
  // An output that names an input, another output, nothing or a directory is refused before work.
  const std::string before = slurp(p);
  const auto x = dir / "x.out";
  for (const std::string& args :
       std::vector<std::string>{"--json " + t, "--csv " + t, "--json ./" + quote(p.filename().string()),
                                "--json " + quote(x.string()) + " --csv " + quote(x.string()), "--json ''", "--csv ''",
                                "--json " + quote(dir.path().string()), "--json - --csv -"}) {
    auto r = run_command("cd " + quote(dir.path().string()) + " && " + cdma() + " analyze -q " + t + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_FALSE(std::filesystem::exists(x)) << args;
  }
  EXPECT_EQ(slurp(p), before);  // the trace is untouched
}

TEST_F(AnalyzeReliability, BadCommandLineValuesExitTwo) {
  const auto p = damaged("good");
  const std::string t = quote(p.string());
  for (const std::string args : {"-j 100000", "-j -1", "--chunk -4K", "--chunk 99999999999999999999", "--chunk 1.5K",
                                 "--chunk 4X", "--chunk 8E", "--chunk ''", "--codecs zrle-17", "--codecs zlib-10"}) {
    auto r = run_command(cdma() + " analyze -q " + t + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  }
  const std::string out = quote((dir / "s.h5").string());
  for (const std::string args :
       {"--mean-run 0", "--mean-run -3", "--dead-share 2", "--density 1.5", "--shape 4294967296,4294967296,4,1",
        "--shape -1,2", "--shape 2,x", "--bytes -1", "--bytes 0", "--bytes 1e300G", "--layers 0", "--iterations 0"}) {
    auto r = run_command(cdma() + " synth -o " + out + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir / "s.h5")) << args;
  }
  EXPECT_EQ(run_command(cdma() + " synth -o ''").exit_code, 2);
  // In range, the same flags work.
  auto r = run_command(cdma() + " synth -o " + out + " --mean-run 1 --dead-share 1 --shape 2,3,4,5 --bytes 4K");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_command(cdma() + " analyze -q -j 1 --chunk 4KiB " + out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace cdma::analyze
