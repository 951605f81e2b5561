// `cdma analyze` and `cdma synth` end to end: numbers checked by an independent Python (h5py +
// numpy + zlib) implementation of docs/spec/CODECS.md, bad input, --keep-going, Ctrl-C.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <fstream>
#include <thread>

namespace cdma {
namespace {

using test::quote;
using test::run_command;

std::string analyze_dir() { return CDMA_TEST_ANALYZE_DIR; }
std::string py() { return quote(test::h5py_python()) + " -W ignore "; }
std::string cdma() { return quote(test::cdma_binary()); }

nlohmann::json load(const std::filesystem::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}
std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}

class AnalyzeCli : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path h5py_trace = dir / "py.h5";
  void SetUp() override {
    auto r = run_command(py() + quote(analyze_dir() + "/py_make_trace.py") + " " + quote(h5py_trace.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Runs the independent checker on an analysis of `trace`.
  void check(const std::filesystem::path& trace, const std::filesystem::path& json) {
    auto r = run_command(py() + quote(analyze_dir() + "/py_check_analysis.py") + " " + quote(trace.string()) + " " +
                         quote(json.string()));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(" 0 errors"), std::string::npos) << r.output;
  }
};

TEST_F(AnalyzeCli, H5pyTraceAllVariantsMatchIndependentPython) {
  const auto out = dir / "a.json";
  auto r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) +
                       " --layouts stored,NCHW,NHWC,CHWN --dtypes stored,float16,bfloat16"
                       " --codecs zvc,zrle-1,zrle-4,zrle-16,zlib-6,zstd-1,lz4 --verify -q --json " +
                       quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = load(out);
  // The offload set: 7 of the 10 tensors (not the two with offload = 0, nor the role-y one) x 12
  // variants; /stats rows only where no dtype conversion is asked (or it is a no-op): two float32
  // rows x 4 layouts, one float16 row x 4 layouts x (stored, float16).
  EXPECT_EQ(j["tensor"].size(), 7u * 12 + 2 * 4 + 8);
  EXPECT_EQ(j["traces"][0]["not_offloaded"], 3);
  EXPECT_EQ(j["traces"][0]["offload_attribute"], true);
  EXPECT_EQ(j["options"]["filters"]["tensors"], "offloaded");
  // --verify counts what it decoded: the 7 tensors, not the /stats rows (which hold no bytes).
  EXPECT_NE(r.output.find("of the 7 tensors analysed decoded"), std::string::npos) << r.output;
  check(h5py_trace, out);
}

// --all-tensors: every recorded tensor, each row saying whether it is offloaded.
TEST_F(AnalyzeCli, AllTensorsIncludesWhatIsNotOffloaded) {
  const auto out = dir / "all.json";
  auto r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) + " --all-tensors --by tensor --json " +
                       quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = load(out);
  EXPECT_EQ(j["traces"][0]["tensors"], 10);
  EXPECT_EQ(j["options"]["filters"]["tensors"], "all");
  int off = 0;
  for (const auto& t : j["tensor"])
    if (!t["from_stats"].get<bool>()) off += t["offload"].get<bool>();
  EXPECT_EQ(off, 7);
  check(h5py_trace, out);
  // The default table says what it left out.
  r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) + " --by network");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("7 offloaded tensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 recorded but not offloaded left out (--all-tensors)"), std::string::npos) << r.output;
}

TEST_F(AnalyzeCli, ChunkedMatchesIndependentPython) {
  const auto out = dir / "c.json";
  auto r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) +
                       " --layouts stored,NHWC --dtypes stored,bf16 --codecs zvc,zrle-3,zlib-1 --chunk 64 -q "
                       "--json " +
                       quote(out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(load(out)["options"]["chunk_bytes"], 64);
  check(h5py_trace, out);
}

TEST_F(AnalyzeCli, SynthTraceMatchesIndependentPythonAndIsDeterministic) {
  const auto t1 = dir / "s1.h5", t2 = dir / "s2.h5";
  for (const auto& t : {t1, t2}) {
    auto r = run_command(cdma() + " synth -o " + quote(t.string()) +
                         " --shape 2,6,5,7 --layers 3 --iterations 2 --density 0.5,0.2,0.05 --clustering spatial"
                         " --dtype float16 --seed 9");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto j1 = dir / "s1.json", j2 = dir / "s2.json", j3 = dir / "s3.json";
  auto r = run_command(cdma() + " analyze " + quote(t1.string()) + " --layouts stored,CHWN -j 1 -q --json " +
                       quote(j1.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  check(t1, j1);
  r = run_command(cdma() + " analyze " + quote(t2.string()) + " --layouts stored,CHWN -j 2 -q --json " +
                  quote(j2.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto a = load(j1), b = load(j2);
  EXPECT_EQ(a["tensor"].size(), 12u);
  a["traces"][0].erase("path");
  b["traces"][0].erase("path");
  EXPECT_EQ(a, b);  // same seed, same bytes; 1 and 2 threads, same numbers
  // Same file, 1 vs 2 threads: byte-identical JSON.
  r = run_command(cdma() + " analyze " + quote(t1.string()) + " --layouts stored,CHWN -j 2 -q --json " +
                  quote(j3.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(slurp(j1), slurp(j3));
  // The synthetic densities come out per layer as asked (within sampling noise).
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : a["layer"])
    if (l["layout"] == "stored") layers.push_back(l);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_NEAR(layers[0]["density"].get<double>(), 0.5, 0.1);
  EXPECT_NEAR(layers[2]["density"].get<double>(), 0.05, 0.04);
}

TEST_F(AnalyzeCli, TableCsvAndLevels) {
  auto r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) + " --progress never");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"conv1", "conv2", "fc1", "network", "density", "zvc", "zrle-4", "zlib-6", "<="})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  const auto csv = dir / "t.csv";
  r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) + " --by layer-iteration -q --csv " +
                  quote(csv.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = slurp(csv);
  EXPECT_EQ(text.rfind("trace,path,model,layer_index,layer,op,role,shape,iteration,layout,dtype,tensors", 0), 0u)
      << text;
  // Each row names its trace by path and model, not only by index.
  EXPECT_NE(text.find("\n0," + h5py_trace.string() + ",pytiny,"), std::string::npos) << text;
  r = run_command(cdma() + " analyze " + quote(h5py_trace.string()) + " --by iteration --csv -");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1 + 2);  // header + iterations 0, 1
}

TEST_F(AnalyzeCli, UsageErrorsExitTwo) {
  for (const char* args : {"", "--codecs gzip", "--by layers", "--layouts NWHC", "--dtypes f64", "--chunk 4X",
                           "--iterations 3-1", "--no-such-flag"}) {
    auto r =
        run_command(cdma() + " analyze " + (std::string(args).empty() ? "" : quote(h5py_trace.string()) + " ") + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  }
  EXPECT_EQ(run_command(cdma() + " analyze --help").exit_code, 0);
  EXPECT_EQ(run_command(cdma() + " synth --help").exit_code, 0);
  EXPECT_EQ(run_command(cdma() + " synth -o " + quote((dir / "x.h5").string()) + " --density 2").exit_code, 2);
}

// The foundation's bad-file cases: each gives a message naming the file (and object) and exit 1.
class AnalyzeBadInput : public AnalyzeCli {
 protected:
  std::filesystem::path bad = dir / "bad.h5";
  void mutate(const std::string& args) {
    auto r = run_command(py() + quote(std::string(CDMA_TEST_FORMATS_DIR) + "/h5py_mutate.py") + " " +
                         quote(bad.string()) + " " + args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void copy_good() { std::filesystem::copy_file(h5py_trace, bad, std::filesystem::copy_options::overwrite_existing); }
  void expect_rejected(const std::vector<std::string>& words) {
    auto r = run_command(cdma() + " analyze -q " + quote(bad.string()));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(bad.string()), std::string::npos) << r.output;
    for (const auto& w : words) EXPECT_NE(r.output.find(w), std::string::npos) << w << "\n" << r.output;
    // --keep-going: the good file is analysed, the bad one listed as skipped, exit 1.
    const auto out = dir / "kg.json";
    r = run_command(cdma() + " analyze -k -q " + quote(h5py_trace.string()) + " " + quote(bad.string()) + " --json " +
                    quote(out.string()));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
    ASSERT_TRUE(std::filesystem::exists(out));
    auto j = load(out);
    EXPECT_EQ(j["traces"][0]["tensors"], 7);  // the offload set
    EXPECT_FALSE(j["traces"][1]["skipped"].empty());
  }
};

TEST_F(AnalyzeBadInput, MissingFile) { expect_rejected({}); }
TEST_F(AnalyzeBadInput, NotHdf5) {
  std::ofstream(bad) << "this is not an HDF5 file\n";
  expect_rejected({});
}
TEST_F(AnalyzeBadInput, Hdf5ButNotATrace) {
  mutate("not-a-trace");
  expect_rejected({});
}
TEST_F(AnalyzeBadInput, NewerFormatVersion) {
  copy_good();
  mutate("set-root-int format_version 2");
  expect_rejected({"format_version"});
}
TEST_F(AnalyzeBadInput, MissingRootAttribute) {
  copy_good();
  mutate("del-root producer");
  expect_rejected({"producer"});
}
TEST_F(AnalyzeBadInput, MissingTensorAttribute) {
  copy_good();
  mutate("del-tensor 0000000000 layer");
  expect_rejected({"0000000000", "layer"});
}
TEST_F(AnalyzeBadInput, DtypeDisagreesWithElementType) {
  copy_good();
  mutate("set-tensor-str 0000000000 dtype float16");
  expect_rejected({"0000000000"});
}
TEST_F(AnalyzeBadInput, TruncatedFile) {
  copy_good();
  std::filesystem::resize_file(bad, std::filesystem::file_size(bad) / 2);
  expect_rejected({});
}
TEST_F(AnalyzeBadInput, IncompleteTraceWarnsAndIsAnalysed) {
  copy_good();
  mutate("set-root-int complete 0");
  auto r = run_command(cdma() + " analyze " + quote(bad.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("INCOMPLETE"), std::string::npos) << r.output;
}

TEST_F(AnalyzeCli, CtrlCStopsCleanlyWithNoOutput) {
  const auto big = dir / "big.h5";
  auto r = run_command(cdma() + " synth -o " + quote(big.string()) + " --bytes 48M --shape 16,64,32,32 --layers 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto out = dir / "int.json";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    std::string bin = test::cdma_binary(), o = out.string(), b = big.string();
    // zlib-9 on one thread takes seconds: the signal arrives mid-run.
    execl(bin.c_str(), bin.c_str(), "analyze", b.c_str(), "--codecs", "zlib-9", "-j", "1", "-q", "--progress", "always",
          "--json", o.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  // Wait for the first progress bar (the run has started, its handler is installed), then Ctrl-C.
  char c = 0;
  while (read(fds[0], &c, 1) == 1 && c != '[') {
  }
  EXPECT_EQ(c, '[');
  kill(pid, SIGINT);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 130);
  close(fds[0]);
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

}  // namespace
}  // namespace cdma
