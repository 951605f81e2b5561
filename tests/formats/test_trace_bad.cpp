// Bad inputs: each gives a TraceError naming file and object, and a non-zero exit from `cdma info`.
#include "test_util.hpp"
#include "trace_fixture.hpp"

#include <gtest/gtest.h>

#include <fstream>

using namespace cdma;
using namespace cdma::formats;

namespace {

class BadInput : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path good = dir / "good.h5";

  void SetUp() override {
    TraceWriter w(good, test::test_attrs());
    auto m = test::make_meta(DType::f32, Layout::NCHW, 0, 0);
    w.append_tensor(m, test::random_bytes(static_cast<std::size_t>(m.bytes()), 1));
    w.close();
  }

  void mutate(const std::string& args) {
    auto r = test::run_command(test::h5py_python() + " " +
                               test::quote(std::string(CDMA_TEST_FORMATS_DIR) + "/h5py_mutate.py") + " " +
                               test::quote(good.string()) + " " + args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // The library error and the CLI both must name the file and the given fragments.
  void expect_rejected(const std::filesystem::path& p, const std::vector<std::string>& fragments) {
    try {
      TraceReader r(p);
      ADD_FAILURE() << "reader accepted " << p;
    } catch (const TraceError& e) {
      EXPECT_EQ(e.file(), p.string());
      std::string what = e.what();
      EXPECT_NE(what.find(p.string()), std::string::npos) << what;
      for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << "'" << f << "' not in: " << what;
    }
    auto res = test::run_command(test::cdma_binary() + " info " + test::quote(p.string()));
    EXPECT_EQ(res.exit_code, 1) << res.output;
    EXPECT_NE(res.output.find(p.string()), std::string::npos) << res.output;
    for (const auto& f : fragments) EXPECT_NE(res.output.find(f), std::string::npos) << res.output;
  }
};

TEST_F(BadInput, MissingFile) { expect_rejected(dir / "nope.h5", {"no such file"}); }

TEST_F(BadInput, NotHdf5) {
  auto p = dir / "text.h5";
  std::ofstream(p) << "this is not an HDF5 file\n";
  expect_rejected(p, {"not an HDF5 file"});
}

TEST_F(BadInput, Hdf5ButNotATrace) {
  auto p = dir / "plain.h5";
  good = p;
  mutate("not-a-trace");
  expect_rejected(p, {"not a cdma trace"});
}

TEST_F(BadInput, NewerFormatVersion) {
  mutate("set-root-int format_version 2");
  expect_rejected(good, {"format_version 2", "supports (1)"});
}

TEST_F(BadInput, MissingRootAttribute) {
  mutate("del-root producer");
  expect_rejected(good, {"'producer'"});
}

TEST_F(BadInput, MissingTensorAttribute) {
  mutate("del-tensor 0000000000 layer");
  expect_rejected(good, {"/tensors/0000000000", "'layer'"});
}

TEST_F(BadInput, DtypeDisagreesWithElementType) {
  mutate("set-tensor-str 0000000000 dtype float16");
  expect_rejected(good, {"/tensors/0000000000", "float16", "32-bit float"});
}

TEST_F(BadInput, OffloadNeitherZeroNorOne) {
  mutate("set-tensor-int8 0000000000 offload 5");
  expect_rejected(good, {"/tensors/0000000000", "'offload' is 5", "expected 0 or 1"});
}

TEST_F(BadInput, UnknownLayout) {
  mutate("set-tensor-str 0000000000 layout NWHC");
  expect_rejected(good, {"/tensors/0000000000", "NWHC"});
}

TEST_F(BadInput, TruncatedFile) {
  auto size = std::filesystem::file_size(good);
  std::filesystem::resize_file(good, size / 2);
  expect_rejected(good, {"cannot open HDF5 file"});
}

TEST_F(BadInput, IncompleteTraceWarnsButReads) {
  mutate("set-root-int complete 0");
  TraceReader r(good);
  EXPECT_FALSE(r.attrs().complete);
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_NE(r.warnings()[0].find("complete = 0"), std::string::npos);
  EXPECT_EQ(r.tensors().size(), 1u);
  auto res = test::run_command(test::cdma_binary() + " info " + test::quote(good.string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("warning"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("INCOMPLETE"), std::string::npos) << res.output;
}

TEST_F(BadInput, OneBadFileAmongGoodOnesStillFails) {
  auto res = test::run_command(test::cdma_binary() + " info " + test::quote(good.string()) + " " +
                               test::quote((dir / "nope.h5").string()));
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.output.find("good.h5"), std::string::npos) << res.output;  // the good one is still shown
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(test::run_command(test::cdma_binary() + " info").exit_code, 2);
  EXPECT_EQ(test::run_command(test::cdma_binary() + " no-such-verb").exit_code, 2);
  auto help = test::run_command(test::cdma_binary() + " info --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--json"), std::string::npos);
}

}  // namespace

namespace {
// A file found by fuzzing on which HDF5 1.10 itself segfaults (reading a vlen string attribute
// through a damaged global heap). The isolated probe turns the crash into an error.
TEST(BadInputIsolation, Hdf5CrashBecomesAnError) {
  std::filesystem::path p = std::string(CDMA_TEST_FORMATS_DIR) + "/hdf5_segv_vlen_attr.h5";
  try {
    TraceReader r(p);
    ADD_FAILURE() << "reader accepted a file that crashes HDF5";
  } catch (const TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("crashed"), std::string::npos) << e.what();
    EXPECT_EQ(e.file(), p.string());
  }
  auto res = test::run_command(test::cdma_binary() + " info " + test::quote(p.string()));
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_NE(res.output.find("damaged"), std::string::npos) << res.output;
}
}  // namespace
