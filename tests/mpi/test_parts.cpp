// analyze::run_part / merge_parts / encode_part (parts.hpp), without MPI: a run split into any
// number of parts and merged (through the byte encoding that MPI ranks send) gives the same JSON
// bytes as the whole run, skips (-k) and errors included; split_by_bytes balances bytes.
#include <cdma/analyze/output.hpp>
#include <cdma/analyze/parts.hpp>
#include <cdma/analyze/pipeline.hpp>
#include <cdma/formats/trace.hpp>

#include <gtest/gtest.h>

#include "test_util.hpp"

#include <chrono>
#include <functional>
#include <numeric>
#include <sstream>

namespace cdma::analyze {
namespace {

using test::quote;
using test::run_command;

std::string json_of(const Analysis& a) {
  std::ostringstream os;
  write_json(os, a);
  return os.str();
}

// The run in `count` parts, each sent through encode_part/decode_part as a rank would.
Analysis run_in_parts(const std::vector<std::filesystem::path>& paths, const Options& o, int count) {
  std::vector<Part> parts;
  for (int i = 0; i < count; ++i) {
    Part p = run_part(paths, o, {}, i, count);
    if (i == 0)
      parts.push_back(std::move(p));  // rank 0's own part is merged as it is (its error object kept)
    else
      parts.push_back(decode_part(encode_part(p)));
  }
  return merge_parts(std::move(parts), o);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const formats::Error& e) {
    return e.what();
  }
  return "(no error)";
}

class AnalyzeParts : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path synth(const std::string& name, const std::string& args) {
    const auto p = dir / name;
    const auto r = run_command(quote(test::cdma_binary()) + " synth -o " + quote(p.string()) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return p;
  }
  std::filesystem::path damaged(const std::string& kind) {
    const auto p = dir / (kind + ".h5");
    const auto r = run_command(quote(test::h5py_python()) + " " +
                               quote(std::string(CDMA_SOURCE_DIR) + "/tests/formats/h5py_damaged.py") + " " +
                               quote(p.string()) + " " + kind);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return p;
  }
};

TEST(AnalyzeSplitByBytes, BalancesBytesNotCounts) {
  // One big tensor first, then many small ones: by count part 0 would get nearly everything.
  std::vector<std::uint64_t> b{1000, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 500, 500};
  const auto cuts = split_by_bytes(b, 3);
  ASSERT_EQ(cuts.size(), 4u);
  EXPECT_EQ(cuts, (std::vector<std::size_t>{0, 1, 12, 13}));  // 1000 | 100 + 500 | 500
  EXPECT_EQ(split_by_bytes(b, 1), (std::vector<std::size_t>{0, b.size()}));
}

TEST(AnalyzeSplitByBytes, EdgeCases) {
  EXPECT_EQ(split_by_bytes({}, 3), (std::vector<std::size_t>{0, 0, 0, 0}));
  EXPECT_EQ(split_by_bytes({7}, 3).back(), 1u);
  // Only empty tensors: balanced by count.
  EXPECT_EQ(split_by_bytes({0, 0, 0, 0}, 2), (std::vector<std::size_t>{0, 2, 4}));
  // Equal tensors split evenly; cuts never go backwards.
  const auto c = split_by_bytes(std::vector<std::uint64_t>(10, 4), 4);
  EXPECT_EQ(c, (std::vector<std::size_t>{0, 2, 5, 7, 10}));  // ties go to the lower cut
  for (std::size_t i = 1; i < c.size(); ++i) EXPECT_LE(c[i - 1], c[i]);
  EXPECT_THROW(split_by_bytes({1}, 0), formats::Error);
  EXPECT_THROW(split_by_bytes({std::uint64_t{1} << 62, 1}, 2), formats::Error);
}

TEST_F(AnalyzeParts, SameJsonForAnyPartCount) {
  const std::vector<std::filesystem::path> paths{
      synth("a.h5", "--layers 3 --iterations 2 --shape 4,8,8,8 --seed 1"),
      std::filesystem::path(CDMA_SOURCE_DIR) / "data/vgg-fmnist.h5",
      synth("b.h5", "--layers 5 --iterations 3 --shape 2,16,8,8 --density 0.1,0.9,0.5,0,1 --dtype float16 --seed 2"),
      std::filesystem::path(CDMA_SOURCE_DIR) / "data/squeezenet-fmnist.h5"};
  Options variants;
  variants.threads = 2;
  variants.layouts = {"stored", "NHWC"};
  variants.dtypes = {"stored", "bfloat16"};
  Options windows;
  windows.max_block_bytes = 4096;  // every tensor analysed window by window
  windows.chunk_bytes = 1024;
  for (const Options& o : {variants, windows}) {
    const std::string whole = json_of(run_analysis(paths, o));
    for (int n : {1, 2, 3, 5, 200}) EXPECT_EQ(json_of(run_in_parts(paths, o, n)), whole) << n << " parts";
  }
}

TEST_F(AnalyzeParts, KeepGoingSkipsAreTheWholeRunsInItsOrder) {
  // Skips of every kind: planning's (in-flight-complete), the reader's (unwritten, external),
  // the /stats rows' (stats-huge), in several files.
  const auto many = dir / "many.h5";  // every third of its 12 tensors unwritten
  const auto r = run_command(quote(test::h5py_python()) + " " +
                             quote(std::string(CDMA_SOURCE_DIR) + "/tests/mpi/h5py_many_bad.py") + " " +
                             quote(many.string()) + " 12");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::filesystem::path> paths{
      damaged("good"),     damaged("unwritten"),  many,
      damaged("external"), damaged("stats-huge"), damaged("in-flight-complete"),
      dir / "missing.h5"};
  Options o;
  o.keep_going = true;
  o.threads = 1;
  const Analysis whole = run_analysis(paths, o);
  std::size_t skips = 0;
  for (const auto& t : whole.traces) skips += t.skipped.size();
  EXPECT_GE(skips, 8u);  // the fixture does produce skips
  // Several of the reader's skips in one trace, which parts split between them.
  std::size_t read_skips = 0;
  for (const auto& t : run_part(paths, o, {}, 0, 1).traces) read_skips += t.read_skips.size();
  EXPECT_GE(read_skips, 4u);
  for (int n : {2, 3, 4, 7}) EXPECT_EQ(json_of(run_in_parts(paths, o, n)), json_of(whole)) << n << " parts";
}

TEST_F(AnalyzeParts, FirstErrorInRunOrderWhateverPartMetIt) {
  const auto good = damaged("good");
  for (const std::string kind : {"unwritten", "stats-huge", "in-flight-complete"}) {
    const std::vector<std::filesystem::path> paths{good, damaged(kind), good};
    const std::string whole = error_of([&] { run_analysis(paths, Options{}); });
    EXPECT_NE(whole, "(no error)") << kind;
    for (int n : {2, 3, 6})
      EXPECT_EQ(error_of([&] { run_in_parts(paths, Options{}, n); }), whole) << kind << ", " << n << " parts";
  }
  const std::vector<std::filesystem::path> missing{good, dir / "missing.h5"};
  EXPECT_EQ(error_of([&] { run_in_parts(missing, Options{}, 3); }),
            error_of([&] { run_analysis(missing, Options{}); }));
}

TEST_F(AnalyzeParts, MergeRefusesPartsThatDoNotFit) {
  const std::vector<std::filesystem::path> paths{damaged("good")};
  const Options o;
  auto two = [&] {
    std::vector<Part> v;
    v.push_back(run_part(paths, o, {}, 0, 2));
    v.push_back(run_part(paths, o, {}, 1, 2));
    return v;
  };
  auto v = two();
  v.pop_back();
  EXPECT_NE(error_of([&] { merge_parts(std::move(v), o); }).find("missing"), std::string::npos);
  v = two();
  v[1].plan_digest ^= 1;  // a rank that saw other files
  EXPECT_NE(error_of([&] { merge_parts(std::move(v), o); }).find("do not see the same trace files"), std::string::npos);
  v = two();
  EXPECT_NO_THROW(merge_parts(std::move(v), o));
}

// A two-tensor trace whose layer names start with `prefix` and whose elements are `value`: traces
// written with prefixes of one length have the same size and the same tensor plan (sizes).
void write_small(const std::filesystem::path& p, const std::string& prefix, float value) {
  formats::TraceAttrs a;
  a.producer = "test";
  a.source = "synthetic";
  a.created = "2026-01-01T00:00:00Z";
  formats::TraceWriter w(p, a, formats::WriterOptions{true, 0, 1});
  std::vector<float> data(256, value);
  for (int i = 0; i < 2; ++i) {
    formats::TensorMeta m;
    m.iteration = 0;
    m.layer = prefix + std::to_string(i);
    m.layer_index = i;
    m.op = "relu";
    m.role = "x";
    m.layout = formats::Layout::NC;
    m.dims = {4, 64};
    m.offload = true;
    w.append_tensor(m, std::as_bytes(std::span<const float>(data)));
  }
  w.close();
}

// Runs part 0 of 2 on `first`, then `change` (another process's view of the files), then part 1 of
// 2 on `second`, and merges them as rank 0 would.
std::string merge_error(const std::filesystem::path& first, const std::function<void()>& change,
                        const std::filesystem::path& second) {
  const Options o;
  std::vector<Part> v;
  v.push_back(run_part({first}, o, {}, 0, 2));
  change();
  v.push_back(decode_part(encode_part(run_part({second}, o, {}, 1, 2))));
  return error_of([&] { merge_parts(std::move(v), o); });
}

// Issue 29: ranks that see different files with the same tensor plan (names and sizes) are not
// merged: the digest covers each trace's path, size, modification time and tensor metadata.
TEST_F(AnalyzeParts, MergeRefusesDifferentFilesWithTheSamePlan) {
  const auto a = dir / "a.h5", b = dir / "b.h5";
  const auto same = [] {};
  write_small(a, "la", 0.5f);
  EXPECT_EQ(merge_error(a, same, a), "(no error)");  // the control: one file, unchanged
  const auto when = std::filesystem::last_write_time(a);
  // Another path holding the same bytes, with the same modification time.
  std::filesystem::copy_file(a, b);
  std::filesystem::last_write_time(b, when);
  EXPECT_NE(merge_error(a, same, b).find("do not see the same trace files"), std::string::npos);
  // The same path rewritten with other data (same metadata, same size): another modification time.
  const auto rewrite_data = [&] {
    write_small(a, "la", 0.0f);
    std::filesystem::last_write_time(a, when + std::chrono::seconds(5));
  };
  ASSERT_EQ(std::filesystem::file_size(a), std::filesystem::file_size(b));
  EXPECT_NE(merge_error(a, rewrite_data, a).find("do not see the same trace files"), std::string::npos);
  // The same path, size and modification time, other tensor metadata (layer names of one length).
  write_small(a, "la", 0.5f);
  std::filesystem::last_write_time(a, when);
  const auto size = std::filesystem::file_size(a);
  const auto rename_layers = [&] {
    write_small(a, "lb", 0.5f);
    std::filesystem::last_write_time(a, when);
    ASSERT_EQ(std::filesystem::file_size(a), size);
  };
  EXPECT_NE(merge_error(a, rename_layers, a).find("do not see the same trace files"), std::string::npos);
}

TEST(AnalyzePartCodec, RoundTripIsExactAndRefusesGarbage) {
  Part p;
  p.index = 1;
  p.count = 3;
  p.stats.wall_s = 0.1 + 0.2;  // not representable in decimal: bits must survive
  p.codec_names = {"zvc"};
  p.traces.resize(1);
  p.traces[0].summary.model = "m\xff";
  p.traces[0].read_skips.push_back({42, {"/tensors/x", "why"}});
  TensorResult r;
  r.info.dims = {1, -2};
  r.variants.resize(1);
  r.variants[0].codecs = {CodecSize{std::nullopt, false}, CodecSize{std::uint64_t{1} << 63, true}};
  p.tensors.push_back(r);
  p.error = PartError{7, true, "bad", nullptr};
  const std::string bytes = encode_part(p);
  const Part q = decode_part(bytes);
  EXPECT_EQ(encode_part(q), bytes);
  EXPECT_EQ(q.stats.wall_s, 0.1 + 0.2);
  EXPECT_EQ(q.tensors[0].variants[0].codecs[1].bytes, std::uint64_t{1} << 63);
  EXPECT_FALSE(q.tensors[0].variants[0].codecs[0].bytes.has_value());
  EXPECT_EQ(q.traces[0].read_skips[0].slot, 42u);
  ASSERT_TRUE(q.error);
  EXPECT_TRUE(q.error->verify);
  EXPECT_THROW(decode_part(bytes.substr(0, bytes.size() - 1)), formats::Error);
  EXPECT_THROW(decode_part(bytes + "x"), formats::Error);
  EXPECT_THROW(decode_part("not a part at all"), formats::Error);
}

}  // namespace
}  // namespace cdma::analyze
