// What the capture says is offloaded (the trace's `offload` attribute, read back by cdma and by
// h5py), calls that fail (they neither shift iterations nor leave tensors), and spools that are
// damaged (no trace presented as whole) or written by an older interposer (still converted).
#include "capture_fixture.hpp"

#include <cdma/capture/collector.hpp>

#include <sys/stat.h>

#include <cstddef>
#include <set>

namespace fs = std::filesystem;
using cdma::capture::SpoolReader;
using cdma::capture::SpoolRecord;
using cdma::capture_test::Capture;
using cdma::capture_test::kCdma;
using cdma::formats::TraceReader;
namespace spool = cdma::capture::spool;

namespace {

// The records of a spool (fixed parts only), in file order.
std::vector<SpoolRecord> records_of(const fs::path& p) {
  SpoolReader r(p);
  std::vector<SpoolRecord> v;
  SpoolRecord rec;
  while (r.next(rec, false)) v.push_back(rec);
  return v;
}

fs::path only_spool(const fs::path& dir) {
  auto v = cdma::capture::find_spools(dir);
  EXPECT_EQ(v.size(), 1u) << dir;
  return v.empty() ? fs::path() : v[0];
}

void patch(const fs::path& p, std::uint64_t off, const void* bytes, std::size_t n) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(off));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

const std::set<std::string> kInPlace = {"relu0", "add0"};  // legacy_net's in-place calls

TEST_F(Capture, OffloadAttributeMarksInPlaceInputs) {
  ASSERT_EQ(capture("--roles all --phases all", CDMA_LEGACY_NET, "--iterations 2"), 0) << stderr_text();
  TraceReader r(trace());
  int offloaded = 0;
  for (const auto& t : r.tensors()) {
    ASSERT_TRUE(t.offload.has_value()) << t.layer << " " << t.role;
    bool want = t.phase == "forward" && t.role == "x" && !kInPlace.count(t.layer);
    EXPECT_EQ(*t.offload, want) << t.layer << " " << t.role << " " << t.phase;
    offloaded += *t.offload;
  }
  EXPECT_EQ(offloaded, 2 * 5);  // conv0 pool0 conv1 bn0 softmax0 per iteration
  EXPECT_NE(stderr_text().find("(10 offloaded)"), std::string::npos) << stderr_text();
  EXPECT_NE(r.root_attribute("capture_offload").value_or("").find("offload = 1"), std::string::npos);

  // The same, read by h5py: an int8 attribute on every dataset.
  std::ofstream py(dir_ / "read.py");
  py << "import h5py, sys\n"
        "def s(v): return v.decode() if isinstance(v, bytes) else str(v)\n"
        "with h5py.File(sys.argv[1], 'r') as f:\n"
        "    for n in sorted(f['tensors']):\n"
        "        a = f['tensors'][n].attrs\n"
        "        o = a['offload']\n"
        "        print(s(a['layer']), s(a['role']), s(a['phase']), int(o), o.dtype)\n";
  py.close();
  ASSERT_EQ(sh(std::string(CDMA_H5PY_PYTHON) + " " + (dir_ / "read.py").string() + " " + trace().string() + " > " +
               (dir_ / "h5py.txt").string()),
            0)
      << stderr_text();
  std::ifstream in(dir_ / "h5py.txt");
  std::size_t lines = 0;
  for (std::string layer, role, phase, dtype; in >> layer >> role >> phase;) {
    int o = -1;
    in >> o >> dtype;
    EXPECT_EQ(dtype, "int8") << layer;
    EXPECT_EQ(o, phase == "forward" && role == "x" && !kInPlace.count(layer) ? 1 : 0) << layer << " " << role;
    ++lines;
  }
  EXPECT_EQ(lines, r.tensors().size());
}

// A spool from before the offload flags (record flags 0): converted, attribute left out, so the
// format's default rule (forward x) applies; its in-situ rows are all kept.
TEST_F(Capture, OlderSpoolsWithoutOffloadFlagsStillConvert) {
  for (const char* mode : {"full", "insitu"}) {
    const fs::path sp = dir_ / (std::string("sp-") + mode);
    ASSERT_EQ(capture(std::string("--keep-spool --mode ") + mode + " --spool-dir " + sp.string(), CDMA_LEGACY_NET,
                      "--iterations 2"),
              0)
        << stderr_text();
    const fs::path file = only_spool(sp);
    int cleared = 0;
    for (const auto& rec : records_of(file)) {
      if (rec.type != spool::RecordType::kTensor && rec.type != spool::RecordType::kStats) continue;
      const std::uint16_t zero = 0;
      patch(file, rec.offset + 6, &zero, 2);  // RecordHeader::flags
      ++cleared;
    }
    EXPECT_EQ(cleared, 14) << mode;
    const fs::path out = dir_ / (std::string("old-") + mode + ".h5");
    ASSERT_EQ(sh(kCdma + " capture --convert " + file.string() + " -o " + out.string()), 0) << stderr_text();
    TraceReader r(out);
    if (std::string(mode) == "full") {
      ASSERT_EQ(r.tensors().size(), 14u);
      for (const auto& t : r.tensors()) {
        EXPECT_FALSE(t.offload.has_value()) << t.layer;
        EXPECT_TRUE(t.offloaded()) << t.layer;  // forward x: the default rule
      }
      EXPECT_NE(r.root_attribute("capture_offload").value_or("").find("unknown"), std::string::npos);
    } else {
      EXPECT_EQ(r.stats().size(), 14u);
    }
  }
}

// --status-checks: a convolution with the anchor's key fails before the loop (algo 7), and an
// activation with x = NULL fails. Before the fix, the failed convolution became the anchor and
// the first real one started "iteration 1".
TEST_F(Capture, FailedLegacyCallsDoNotShiftIterations) {
  ASSERT_EQ(capture("", CDMA_LEGACY_NET, "--iterations 2 --status-checks"), 0) << stderr_text();
  TraceReader r(trace());
  ASSERT_EQ(r.tensors().size(), 14u);
  EXPECT_EQ(check_x_tensors(r), 14);  // names and iterations as the program counted them
  std::set<std::int64_t> its;
  for (const auto& t : r.tensors()) its.insert(t.iteration);
  EXPECT_EQ(its, (std::set<std::int64_t>{0, 1}));
  auto tl = r.timeline();
  ASSERT_EQ(tl.size(), 2u + 2u * 13u);  // the failed calls are on the timeline
  EXPECT_EQ(tl[0].iteration, 0);
  EXPECT_EQ(tl[0].layer, "conv0");
  EXPECT_EQ(tl[2].layer, "conv0");  // the real conv0 has the same name and iteration
  EXPECT_EQ(tl[2].iteration, 0);
  // The failed convolution's input was copied before the call, then not kept.
  EXPECT_NE(r.root_attribute("capture_counters").value_or("").find("skipped_failed_calls=1"), std::string::npos)
      << r.root_attribute("capture_counters").value_or("");
  EXPECT_NE(stderr_text().find("1 tensors of failed calls not kept"), std::string::npos) << stderr_text();
}

// PyTorch's try_plans: in step 0 every execution first tries a plan that fails.
TEST_F(Capture, RetriedBackendPlansDoNotShiftIterations) {
  ASSERT_EQ(capture("", CDMA_BACKEND_NET, "--iterations 3 --retry-plans"), 0) << stderr_text();
  TraceReader r(trace());
  ASSERT_EQ(r.tensors().size(), 6u);
  EXPECT_EQ(check_x_tensors(r), 6);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.tensors()[i].iteration, static_cast<std::int64_t>(i / 2));
    EXPECT_EQ(r.tensors()[i].layer, i % 2 ? "conv1" : "conv0");
  }
  EXPECT_EQ(r.timeline().size(), 15u + 5u);
  EXPECT_NE(r.root_attribute("capture_counters").value_or("").find("skipped_failed_calls=2"), std::string::npos)
      << r.root_attribute("capture_counters").value_or("");
}

// Issue 13, 8a: a damaged record stops the conversion with exit 1, and no trace is left that
// says complete = 1 (none at all; an older file at the output path stays as it was).
TEST_F(Capture, DamagedSpoolLeavesNoTraceMarkedComplete) {
  const fs::path sp = dir_ / "sp";
  ASSERT_EQ(capture("--keep-spool --spool-dir " + sp.string(), CDMA_LEGACY_NET, "--iterations 2"), 0) << stderr_text();
  const fs::path file = only_spool(sp);
  const auto recs = records_of(file);
  std::vector<std::uint64_t> tensors;
  for (const auto& rec : recs)
    if (rec.type == spool::RecordType::kTensor) tensors.push_back(rec.offset);
  ASSERT_EQ(tensors.size(), 14u);
  const fs::path pristine = dir_ / "pristine.spool";
  fs::copy_file(file, pristine);
  const fs::path out = dir_ / "out.h5";

  struct Damage {
    const char* what;
    std::uint64_t offset;
    std::vector<unsigned char> bytes;
    const char* message;
  };
  const std::uint64_t t5 = tensors[5] + sizeof(spool::RecordHeader);  // the 6th tensor's fixed part
  const std::vector<Damage> damages = {
      {"dtype code", t5 + offsetof(spool::TensorRecord, dtype), {9}, "unknown dtype code 9"},
      {"rank", t5 + offsetof(spool::TensorRecord, ndims), {3}, "rank 3"},
      {"op name", t5 + offsetof(spool::TensorRecord, op), {'z', 'z', 0}, "unknown op 'zz'"},
      {"dims", t5 + offsetof(spool::TensorRecord, dims) + 8, {5}, "data_bytes"},
      {"record magic", tensors[9], {'X'}, "bad record magic"},
      {"record type", tensors[9] + 4, {77}, "unknown record type 77"},
  };
  for (const auto& d : damages) {
    fs::copy_file(pristine, file, fs::copy_options::overwrite_existing);
    patch(file, d.offset, d.bytes.data(), d.bytes.size());
    fs::remove(out);
    EXPECT_EQ(sh(kCdma + " capture --convert " + file.string() + " -o " + out.string()), 1) << d.what;
    const std::string err = stderr_text();
    EXPECT_NE(err.find(file.string()), std::string::npos) << d.what << ": " << err;
    EXPECT_NE(err.find("damaged"), std::string::npos) << d.what << ": " << err;
    EXPECT_NE(err.find(d.message), std::string::npos) << d.what << ": " << err;
    EXPECT_FALSE(fs::exists(out)) << d.what;
    for (const auto& e : fs::directory_iterator(dir_))  // no temporary file left either
      EXPECT_EQ(e.path().filename().string().find(".partial-"), std::string::npos) << e.path();
  }
  // An older trace at the output path is not replaced by a failed conversion.
  fs::copy_file(pristine, file, fs::copy_options::overwrite_existing);
  ASSERT_EQ(sh(kCdma + " capture --convert " + file.string() + " -o " + out.string()), 0) << stderr_text();
  patch(file, tensors[9], "X", 1);
  EXPECT_EQ(sh(kCdma + " capture -f --convert " + file.string() + " -o " + out.string()), 1);
  {
    TraceReader r(out);
    EXPECT_TRUE(r.attrs().complete);
    EXPECT_EQ(r.tensors().size(), 14u);
  }
  // A spool cut inside its last tensor (a crash) still converts what precedes it.
  fs::copy_file(pristine, file, fs::copy_options::overwrite_existing);
  fs::resize_file(file, tensors[13] + sizeof(spool::RecordHeader) + 40);
  ASSERT_EQ(sh(kCdma + " capture -f --convert " + file.string() + " -o " + out.string()), 0) << stderr_text();
  TraceReader r(out);
  EXPECT_EQ(r.tensors().size(), 13u);
  EXPECT_NE(r.root_attribute("capture_end").value_or("").find("truncated"), std::string::npos);
}

TEST_F(Capture, SpoolReaderRefusesWhatIsNotARegularFile) {
  ASSERT_EQ(mkfifo((dir_ / "fifo.spool").c_str(), 0600), 0);
  EXPECT_EQ(sh("timeout 20 " + kCdma + " capture --convert " + (dir_ / "fifo.spool").string() + " -o " +
               (dir_ / "x.h5").string()),
            1);
  EXPECT_NE(stderr_text().find("not a regular file"), std::string::npos) << stderr_text();
}

}  // namespace
