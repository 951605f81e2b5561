// Reliability of the trace layer (issue 13): text that is not UTF-8, counts that overflow, storage
// that holds no data of its own, paths that are no regular files, half-written tensors, and the
// isolating probe's report. Damaged files are written with h5py (h5py_damaged.py), as another
// producer or a damaged disk would leave them.
#include "test_util.hpp"
#include "trace_fixture.hpp"

#include <cdma/formats/text.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <chrono>
#include <fstream>

using namespace cdma;
using namespace cdma::formats;

namespace {

TEST(TraceText, ValidUtf8IsKeptAndEverythingElseEscaped) {
  EXPECT_TRUE(is_clean_text(""));
  EXPECT_TRUE(is_clean_text("conv1.weight"));
  EXPECT_TRUE(is_clean_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // 2-, 3- and 4-byte sequences
  EXPECT_EQ(clean_text("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(clean_text("\xff\xfe\x80"
                       "bad"),
            "\\xFF\\xFE\\x80bad");
  EXPECT_EQ(clean_text("a\tb\x7f"), "a\\x09b\\x7F");                  // control characters
  EXPECT_EQ(clean_text("\xc0\xaf"), "\\xC0\\xAF");                    // overlong '/'
  EXPECT_EQ(clean_text("\xed\xa0\x80"), "\\xED\\xA0\\x80");           // a UTF-16 surrogate
  EXPECT_EQ(clean_text("\xf4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(clean_text("x\xe2\x82"), "x\\xE2\\x82");                  // truncated sequence
  for (std::string s : {"\xff", "a\x01", "\xc3", "\xe2\x82\xac\x80"}) {
    EXPECT_FALSE(is_clean_text(s)) << s;
    EXPECT_TRUE(is_clean_text(clean_text(s))) << s;
    // JSON writers accept the result: nlohmann would throw type_error 316 on the raw bytes.
    EXPECT_NO_THROW((void)nlohmann::json(clean_text(s)).dump());
  }
  // A fixed-size field never cuts a sequence in two.
  EXPECT_EQ(utf8_prefix("ab\xe2\x82\xac", 4), "ab");
  EXPECT_EQ(utf8_prefix("ab\xe2\x82\xac", 5), "ab\xe2\x82\xac");
  EXPECT_EQ(utf8_prefix("abcdef", 3), "abc");
}

class TraceReliability : public ::testing::Test {
 protected:
  test::TempDir dir;

  std::filesystem::path damaged(const std::string& kind) {
    auto p = dir / (kind + ".h5");
    auto r = test::run_command(test::h5py_python() + " " +
                               test::quote(std::string(CDMA_TEST_FORMATS_DIR) + "/h5py_damaged.py") + " " +
                               test::quote(p.string()) + " " + kind);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return p;
  }

  // The library and `cdma info` both refuse, naming the file, the object and the fragments.
  void expect_refused(const std::filesystem::path& p, const std::string& object,
                      const std::vector<std::string>& fragments) {
    try {
      TraceReader r(p);
      ADD_FAILURE() << "reader accepted " << p;
    } catch (const TraceError& e) {
      EXPECT_EQ(e.file(), p.string());
      EXPECT_EQ(e.object(), object) << e.what();
      for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
    auto res = test::run_command(test::cdma_binary() + " info " + test::quote(p.string()));
    EXPECT_EQ(res.exit_code, 1) << res.output;
    EXPECT_NE(res.output.find(p.string() + ": " + object), std::string::npos) << res.output;
  }
};

TEST_F(TraceReliability, LayerThatIsNotUtf8IsEscapedWithAWarning) {
  auto p = damaged("bad-utf8-layer");
  TraceReader r(p);
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[1].layer, "\\xFF\\xFE\\x80bad");
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_NE(r.warnings()[0].find("/tensors/0000000001/@layer"), std::string::npos) << r.warnings()[0];
  // Both JSON writers: exit 0 and valid JSON holding the escaped name (they aborted before).
  for (const char* verb : {" info --json ", " analyze -q --json - "}) {
    auto res = test::run_command("{ " + test::cdma_binary() + verb + test::quote(p.string()) + " 2>/dev/null; }");
    ASSERT_EQ(res.exit_code, 0) << verb << res.output;
    auto j = nlohmann::json::parse(res.output);
    EXPECT_NE(res.output.find("\\\\xFF\\\\xFE\\\\x80bad"), std::string::npos) << verb;
  }
}

TEST_F(TraceReliability, WriterStoresNamesAsCleanText) {
  auto p = dir / "w.h5";
  {
    TraceAttrs a = test::test_attrs();
    a.command = "run \xff --flag";
    TraceWriter w(p, a);
    auto m = test::make_meta(DType::f32, Layout::NC, 0, 0);
    m.layer = "fc\xfe\x01";
    w.append_tensor(m, test::random_bytes(static_cast<std::size_t>(m.bytes()), 1));
    TimelineRow row;
    row.op = "conv";
    row.layer = std::string(62, 'x') + "\xe2\x82\xac";  // a 3-byte character across the 64-byte field's end
    w.append_timeline(row);
    w.close();
  }
  TraceReader r(p);
  EXPECT_TRUE(r.warnings().empty());  // stored clean: nothing to escape on reading
  EXPECT_EQ(r.tensors()[0].layer, "fc\\xFE\\x01");
  EXPECT_EQ(*r.attrs().command, "run \\xFF --flag");
  EXPECT_EQ(r.timeline()[0].layer, std::string(62, 'x'));  // cut before the character, not inside it
  auto res = test::run_command(test::h5py_python() + " -c " +
                               test::quote("import h5py,sys; f=h5py.File(sys.argv[1]); "
                                           "print(f['tensors/0000000000'].attrs['layer'])") +
                               " " + test::quote(p.string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("fc\\xFE\\x01"), std::string::npos) << res.output;
}

TEST_F(TraceReliability, DatasetNameThatIsNotUtf8IsRefused) {
  expect_refused(damaged("bad-utf8-name"), "/tensors/\\xFF\\xFE", {"not valid UTF-8"});
}

TEST_F(TraceReliability, CompleteMustBeZeroOrOne) {
  expect_refused(damaged("complete-5"), "/", {"'complete' is 5", "expected 0 or 1"});
}

TEST_F(TraceReliability, DimensionsWhoseByteCountOverflowsAreRefused) {
  expect_refused(damaged("dims-overflow"), "/tensors/0000000001", {"4294967296x4294967296x4x1", "overflows"});
}

TEST_F(TraceReliability, DataThatDoesNotExistIsRefused) {
  expect_refused(damaged("unwritten"), "/tensors/0000000001", {"no data stored"});
  expect_refused(damaged("part-written"), "/tensors/0000000001", {"1 of 2 chunks"});
  expect_refused(damaged("virtual"), "/tensors/0000000001", {"virtual dataset"});
  expect_refused(damaged("external"), "/tensors/0000000001", {"external raw file"});
  expect_refused(damaged("compact"), "/tensors/0000000001", {"compact storage"});
}

TEST_F(TraceReliability, TensorInFlightOfAnIncompleteFileIsLeftOutWithAWarning) {
  auto p = damaged("in-flight");  // complete = 0, tensor 1 lacks 'iteration'
  TraceReader r(p);
  ASSERT_EQ(r.tensors().size(), 1u);
  EXPECT_EQ(r.tensors()[0].name, "0000000000");
  ASSERT_EQ(r.warnings().size(), 2u);
  EXPECT_NE(r.warnings()[1].find("/tensors/0000000001"), std::string::npos) << r.warnings()[1];
  EXPECT_NE(r.warnings()[1].find("'iteration'"), std::string::npos) << r.warnings()[1];
  auto res = test::run_command(test::cdma_binary() + " info " + test::quote(p.string()));
  EXPECT_EQ(res.exit_code, 0) << res.output;
  EXPECT_NE(res.output.find("left out"), std::string::npos) << res.output;
  // The whole tensor's bytes are intact.
  auto bytes = r.read(r.tensors()[0]);
  std::vector<float> v(16);
  std::memcpy(v.data(), bytes.data(), 64);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], static_cast<float>(i));
}

TEST_F(TraceReliability, BadTensorOfACompleteFileFailsItOrIsSkippedAlone) {
  auto p = damaged("in-flight-complete");  // complete = 1: a missing attribute is an error
  expect_refused(p, "/tensors/0000000001", {"'iteration'"});
  ReaderOptions o;
  o.skip_bad_tensors = true;
  TraceReader r(p, o);
  ASSERT_EQ(r.tensors().size(), 1u);
  ASSERT_EQ(r.skipped_tensors().size(), 1u);
  EXPECT_EQ(r.skipped_tensors()[0].object, "/tensors/0000000001");
  EXPECT_EQ(r.skipped_tensors()[0].reason, "missing required attribute 'iteration'");
}

TEST_F(TraceReliability, PathsThatAreNoRegularFilesAreRefusedAtOnce) {
  const auto fifo = dir / "pipe.h5";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  expect_refused(fifo, "", {"not a regular file", "named pipe"});  // opening it would block forever
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  expect_refused(dir.path(), "", {"is a directory"});
  auto res = test::run_command("timeout 20 " + test::cdma_binary() + " analyze -q " + test::quote(fifo.string()));
  EXPECT_EQ(res.exit_code, 1) << res.output;
  EXPECT_NE(res.output.find("named pipe"), std::string::npos) << res.output;
}

// A file found by fuzzing on which HDF5 1.10 loops forever (reading the root 'format' attribute
// through a damaged global heap): the probe's timeout makes it an error instead of a hang.
TEST(TraceReliabilityIsolation, Hdf5LoopBecomesAnErrorAfterTheTimeout) {
  const std::filesystem::path p = std::string(CDMA_TEST_FORMATS_DIR) + "/hdf5_loop_global_heap.h5";
  ReaderOptions o;
  o.probe_timeout_s = 2;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    TraceReader r(p, o);
    ADD_FAILURE() << "reader accepted a file on which HDF5 loops";
  } catch (const TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("did not finish in 2 s"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

// The probe child reads the metadata and reports it; the parent must see exactly what reading
// in-process gives (names, attributes, dims, offload, raw offsets, warnings).
TEST_F(TraceReliability, ProbeReportEqualsAnInProcessRead) {
  for (const std::string kind : {"good", "bad-utf8-layer", "in-flight"}) {
    auto p = damaged(kind);
    ReaderOptions in_process;
    in_process.isolate = false;
    TraceReader a(p), b(p, in_process);
    EXPECT_EQ(a.warnings(), b.warnings()) << kind;
    EXPECT_EQ(a.attrs().producer, b.attrs().producer);
    EXPECT_EQ(a.attrs().complete, b.attrs().complete);
    ASSERT_EQ(a.tensors().size(), b.tensors().size()) << kind;
    for (std::size_t i = 0; i < a.tensors().size(); ++i) {
      const auto &x = a.tensors()[i], &y = b.tensors()[i];
      EXPECT_EQ(x.name, y.name);
      EXPECT_EQ(x.layer, y.layer);
      EXPECT_EQ(x.iteration, y.iteration);
      EXPECT_EQ(x.dims, y.dims);
      EXPECT_EQ(x.dtype, y.dtype);
      EXPECT_EQ(x.offload, y.offload);
      EXPECT_EQ(a.raw_offset(x), b.raw_offset(y));
      EXPECT_TRUE(a.raw_offset(x).has_value());  // contiguous float32: usable in place
      EXPECT_EQ(a.read(x), b.read(y));
    }
  }
  // An error found by the child is the error the parent throws.
  auto bad = damaged("complete-5");
  std::string child, here;
  try {
    TraceReader r(bad);
  } catch (const TraceError& e) {
    child = e.what();
  }
  try {
    TraceReader r(bad, ReaderOptions{false});
  } catch (const TraceError& e) {
    here = e.what();
  }
  EXPECT_FALSE(child.empty());
  EXPECT_EQ(child, here);
}

// Windowed reads of any element range equal the matching slice of a whole read, for contiguous
// and chunked (shuffle + deflate) storage.
TEST_F(TraceReliability, ReadElementsEqualsSlicesOfTheWholeTensor) {
  for (int deflate : {0, 4}) {
    auto p = dir / ("w" + std::to_string(deflate) + ".h5");
    {
      WriterOptions wo;
      wo.deflate_level = deflate;
      TraceWriter w(p, test::test_attrs(), wo);
      auto m = test::make_meta(DType::f16, Layout::NCHW, 0, 0);
      m.dims = {3, 5, 7, 11};
      w.append_tensor(m, test::random_bytes(static_cast<std::size_t>(m.bytes()), 7));
      w.close();
    }
    TraceReader r(p);
    const auto& m = r.tensors()[0];
    const auto whole = r.read(m);
    const std::uint64_t n = static_cast<std::uint64_t>(m.elements());
    std::mt19937 rng(1);
    for (int k = 0; k < 60; ++k) {
      const std::uint64_t first = rng() % n, count = 1 + rng() % (n - first);
      std::vector<std::byte> part(count * 2);
      r.read_elements(m, first, part);
      ASSERT_EQ(0, std::memcmp(part.data(), whole.data() + first * 2, part.size())) << first << "+" << count;
    }
    std::vector<std::byte> too_many(4);
    EXPECT_THROW(r.read_elements(m, n - 1, too_many), TraceError);
  }
}

// Byte counts: the writer refuses dims whose product overflows; elements() and bytes() say -1.
TEST(TraceCounts, OverflowIsDetectedNotWrapped) {
  TensorMeta m;
  m.dims = {std::int64_t{1} << 32, std::int64_t{1} << 32, 4, 1};
  EXPECT_EQ(m.elements(), -1);
  EXPECT_EQ(m.bytes(), -1);
  m.dims = {std::int64_t{1} << 31, std::int64_t{1} << 30, 1, 1};  // 2^61 elements fit, x4 bytes do not
  EXPECT_EQ(m.elements(), std::int64_t{1} << 61);
  EXPECT_EQ(m.bytes(), -1);
  m.dims = {2, -3, 1, 1};
  EXPECT_EQ(m.elements(), -1);
  test::TempDir dir;
  TraceWriter w(dir / "o.h5", test::test_attrs());
  m.dims = {std::int64_t{1} << 32, std::int64_t{1} << 32, 4, 1};
  EXPECT_THROW(w.append_tensor(m, {}), TraceError);
}

}  // namespace
