// tools/gpu-check (the GPU check's script, its spool checks, its output folder, its settings) and
// the interposer's portability (DT_NEEDED, glibc symbol versions, the glibc shims), all without a
// GPU: the GPU check runs end to end with tests/capture/fake_train.py standing in for PyTorch.
#include "capture_fixture.hpp"

#include <dlfcn.h>

#include <chrono>

#include <regex>
#include <set>

namespace fs = std::filesystem;
using cdma::capture_test::Capture;

namespace {

const std::string kTools = std::string(CDMA_SOURCE_DIR) + "/tools/gpu-check";
const std::string kPy = CDMA_H5PY_PYTHON;

// Files directly in `dir` and their sizes.
std::map<std::string, std::uintmax_t> files_in(const fs::path& dir) {
  std::map<std::string, std::uintmax_t> m;
  for (const auto& e : fs::directory_iterator(dir)) m[e.path().filename().string()] = fs::file_size(e.path());
  return m;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// tools/gpu-check: its dry run and its spool checks (shapes, bytes against the tensors "saved for
// backward", densities, GPU times) on spools of the fake-cuDNN programs.
TEST_F(Capture, GpuCheckScriptChecksSpools) {
  const std::string tools = std::string(CDMA_SOURCE_DIR) + "/tools/gpu-check";
  const std::string py = CDMA_H5PY_PYTHON;
  const std::string sp = (dir_ / "sp").string();
  ASSERT_EQ(capture("--keep-spool --spool-dir " + sp, CDMA_LEGACY_NET, "--iterations 3"), 0) << stderr_text();
  // A training-run result as train.py writes it: conv input shapes and hashes of saved tensors,
  // here made from the bytes the program passed in iteration 1.
  auto make_result = [&](const std::string& path, const std::string& shapes, bool corrupt) {
    std::ofstream f(dir_ / "mk.py");
    f << "import hashlib, json, struct\n"
         "h = set()\n"
         "with open('"
      << (dir_ / "expected.bin").string()
      << "', 'rb') as f:\n"
         "    while True:\n"
         "        b = f.read(4)\n"
         "        if not b: break\n"
         "        n = struct.unpack('<I', b)[0]; name = f.read(n).decode()\n"
         "        it, nb = struct.unpack('<qQ', f.read(16)); data = f.read(nb)\n"
         "        if it == 1: h.add(hashlib.sha1(data + (b'x' if "
      << (corrupt ? "name == 'conv1'" : "False")
      << " else b'')).hexdigest())\n"
         "json.dump({'check_iter': 1, 'conv_shapes': "
      << shapes << ", 'saved_hashes': sorted(h)}, open('" << path << "', 'w'))\n";
    f.close();
    return sh(py + " " + (dir_ / "mk.py").string()) == 0;
  };
  const std::string good = (dir_ / "good.json").string(), bad = (dir_ / "bad.json").string();
  ASSERT_TRUE(make_result(good, "[[2, 3, 8, 8], [2, 4, 4, 4]]", false));
  EXPECT_EQ(sh(py + " " + tools + "/train.py --check-only " + sp + " --train-result " + good + " >/dev/null"), 0)
      << stderr_text();
  ASSERT_TRUE(make_result(bad, "[[2, 3, 8, 8], [2, 4, 8, 8]]", false));
  EXPECT_EQ(sh(py + " " + tools + "/train.py --check-only " + sp + " --train-result " + bad + " >/dev/null"), 1);
  ASSERT_TRUE(make_result(bad, "[[2, 3, 8, 8], [2, 4, 4, 4]]", true));
  EXPECT_EQ(sh(py + " " + tools + "/train.py --check-only " + sp + " --train-result " + bad + " >/dev/null"), 1);
  // In-situ spools.
  const std::string sp2 = (dir_ / "sp2").string();
  ASSERT_EQ(capture("--mode insitu --keep-spool --spool-dir " + sp2, CDMA_LEGACY_NET, "--iterations 2"), 0);
  EXPECT_EQ(sh(py + " " + tools + "/train.py --check-only " + sp2 + " --insitu >/dev/null"), 0) << stderr_text();
  // A damaged spool fails the check with the collector's reason (streaming reader).
  for (const auto& e : fs::directory_iterator(sp)) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 3);  // the first record's magic
    f.put('Z');
  }
  EXPECT_EQ(
      sh(py + " " + tools + "/train.py --check-only " + sp + " --out " + (dir_ / "dmg.json").string() + " >/dev/null"),
      1);
  std::ifstream dj(dir_ / "dmg.json");
  std::string dmg(std::istreambuf_iterator<char>(dj), {});
  EXPECT_NE(dmg.find("bad record magic"), std::string::npos) << dmg;
}

// The output folder of a run: at most 8 files, each under 16 MiB (what comes back from the GPU
// machine), the summary text and JSON, and an archive that holds no full-capture spool.
void expect_small_output(const fs::path& out) {
  auto files = files_in(out);
  EXPECT_LE(files.size(), 8u);
  for (const auto& [name, size] : files) EXPECT_LT(size, 16u << 20) << name;
  EXPECT_TRUE(files.count("summary.txt"));
  EXPECT_TRUE(files.count("summary.json"));
  EXPECT_TRUE(files.count("results.tar.gz") || files.count("results.tar.gz.0")) << "no archive";
}

// run.sh --dry-run: everything but the GPU part, on spools of the fake-cuDNN programs.
TEST_F(Capture, GpuCheckDryRun) {
  const std::string sp = (dir_ / "sp").string();
  ASSERT_EQ(capture("--keep-spool --spool-dir " + sp, CDMA_LEGACY_NET, "--iterations 3"), 0) << stderr_text();
  const fs::path out = dir_ / "out", work = dir_ / "work";
  ASSERT_EQ(sh("bash " + kTools + "/run.sh --dry-run --python " + kPy + " --spool " + sp + " --out " + out.string() +
               " --work " + work.string() + " > " + (dir_ / "stdout.txt").string()),
            0)
      << stderr_text() << slurp(dir_ / "stdout.txt");
  const std::string text = slurp(dir_ / "stdout.txt");
  // Versions come first; the GPU-time verdict has a line of its own.
  EXPECT_EQ(text.rfind("== versions", 0), 0u) << text;
  EXPECT_LT(text.find("glibc"), text.find("== runs")) << text;
  EXPECT_NE(text.find("== capture checks: PASSED"), std::string::npos) << text;
  EXPECT_NE(text.find("\n== GPU time (CUPTI): OK\n"), std::string::npos) << text;
  expect_small_output(out);
  EXPECT_FALSE(fs::exists(work)) << "the working folder is removed unless --keep-work";
  // The archive holds the log and the check results.
  ASSERT_EQ(sh("tar tzf " + (out / "results.tar.gz").string() + " > " + (dir_ / "list.txt").string()), 0);
  const std::string list = slurp(dir_ / "list.txt");
  EXPECT_NE(list.find("log.txt"), std::string::npos) << list;
  EXPECT_NE(list.find("dry.check.json"), std::string::npos) << list;

  // Without CUPTI (no correlation or kernel record in the spool) capture still passes; the GPU
  // time reads UNAVAILABLE on its own line, and the exit status stays 0.
  const std::string sp2 = (dir_ / "sp2").string();
  ASSERT_EQ(capture("--cupti off --keep-spool --spool-dir " + sp2, CDMA_LEGACY_NET, "--iterations 2"), 0);
  ASSERT_EQ(
      sh("bash " + kTools + "/run.sh --dry-run --python " + kPy + " --spool " + sp2 + " --out " +
         (dir_ / "out2").string() + " --work " + (dir_ / "work2").string() + " > " + (dir_ / "stdout2.txt").string()),
      0)
      << stderr_text() << slurp(dir_ / "stdout2.txt");
  const std::string text2 = slurp(dir_ / "stdout2.txt");
  EXPECT_NE(text2.find("== capture checks: PASSED"), std::string::npos) << text2;
  EXPECT_NE(text2.find("\n== GPU time (CUPTI): UNAVAILABLE (capture counts as working without it)\n"),
            std::string::npos)
      << text2;
  EXPECT_NE(slurp(dir_ / "out2" / "summary.json").find("\"gpu_time\": \"unavailable\""), std::string::npos);
}

// The whole check with the fake trainer: six runs, checks, summary, archive; budgets from the
// environment (GPU_CHECK_BUDGET, the caller's CDMA_CAPTURE_RING_WAIT_MS) and flags (--ring)
// reach the interposer (its capture_options, in the archived check JSON).
TEST_F(Capture, GpuCheckFullFakeRunIsSmallAndTakesOverrides) {
  const fs::path out = dir_ / "out", work = dir_ / "work";
  const std::string env = std::string("FAKE_TRAIN_PROGRAM=") + CDMA_LEGACY_NET +
                          " GPU_CHECK_BUDGET=200000 CDMA_CAPTURE_RING_WAIT_MS=7 GPU_CHECK_ITERATIONS=6 ";
  ASSERT_EQ(sh(env + "bash " + kTools + "/run.sh --python " + kPy + " --trainer " + CDMA_SOURCE_DIR +
               "/tests/capture/fake_train.py --lib " + CDMA_CAPTURE_LIB + " --out " + out.string() + " --work " +
               work.string() + " --keep-work --check-iter 2 --ring 3M > " + (dir_ / "stdout.txt").string()),
            0)
      << stderr_text() << slurp(dir_ / "stdout.txt");
  const std::string text = slurp(dir_ / "stdout.txt");
  for (const char* run : {"base", "full", "insitu", "timeline", "legacy-base", "legacy-full"})
    EXPECT_NE(text.find("== " + std::string(run) + " ("), std::string::npos) << run << "\n" << text;
  EXPECT_NE(text.find("== capture checks: PASSED (4 spools checked)"), std::string::npos) << text;
  EXPECT_NE(text.find("cdma.torch"), std::string::npos) << text;
  expect_small_output(out);
  // Spools stayed in the working folder; the full-capture ones are not in the archive.
  EXPECT_TRUE(fs::exists(work / "spool-full"));
  for (const auto& [name, size] : files_in(out)) EXPECT_EQ(name.find(".spool"), std::string::npos) << name;
  ASSERT_EQ(sh("tar tzf " + (out / "results.tar.gz").string() + " > " + (dir_ / "list.txt").string()), 0);
  const std::string list = slurp(dir_ / "list.txt");
  EXPECT_EQ(list.find("spool-full/"), std::string::npos) << list;
  EXPECT_EQ(list.find("spool-legacy-full/"), std::string::npos) << list;
  EXPECT_NE(list.find("spool-timeline/"), std::string::npos) << list;
  const std::string opts = slurp(work / "full.check.json");
  EXPECT_NE(opts.find("budget=200000 ring=3145728"), std::string::npos) << opts;
  EXPECT_NE(opts.find("skip=2 first=1"), std::string::npos) << opts;
  EXPECT_NE(slurp(work / "settings.json").find("\"ring_wait_ms\": 7"), std::string::npos);
  // The full run kept only iteration 2 (sampling), within the budget.
  EXPECT_NE(opts.find("\"tensors\": 7"), std::string::npos) << opts;
}

// Runs that outlast their limit are cut, runs after the deadline are not started, and the summary
// and archive are still written: the check ends in bounded time whatever the machine does.
TEST_F(Capture, GpuCheckDeadlineBoundsTheCheck) {
  const fs::path out = dir_ / "out";
  const std::string env = std::string("FAKE_TRAIN_PROGRAM=") + CDMA_LEGACY_NET + " FAKE_TRAIN_SLEEP_S=60 ";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(sh(env + "bash " + kTools + "/run.sh --python " + kPy + " --trainer " + CDMA_SOURCE_DIR +
               "/tests/capture/fake_train.py --lib " + CDMA_CAPTURE_LIB + " --out " + out.string() + " --work " +
               (dir_ / "work").string() + " --run-timeout 2 --deadline 20 > " + (dir_ / "stdout.txt").string()),
            1);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string text = slurp(dir_ / "stdout.txt");
  EXPECT_LT(secs, 45) << text;
  EXPECT_NE(text.find("timed out"), std::string::npos) << text;
  EXPECT_NE(text.find("skipped (deadline)"), std::string::npos) << text;
  EXPECT_NE(text.find("== capture checks: FAILED"), std::string::npos) << text;
  expect_small_output(out);
}

// A big archive is split into parts below 16 MiB, and never more than 8 files come back.
TEST_F(Capture, GpuCheckSplitsABigArchive) {
  const std::string sp = (dir_ / "sp").string();
  ASSERT_EQ(capture("--keep-spool --mode timeline --spool-dir " + sp, CDMA_LEGACY_NET, "--iterations 2"), 0);
  // Make the archived material big and incompressible: a 3 MiB random file beside the spool
  // (run.sh archives spool folders whole).
  const fs::path out = dir_ / "out", work = dir_ / "work";
  fs::create_directories(work / "spool-timeline");
  ASSERT_EQ(sh("head -c 3145728 /dev/urandom > " + (work / "spool-timeline" / "noise.bin").string()), 0);
  ASSERT_EQ(sh("bash " + kTools + "/run.sh --dry-run --python " + kPy + " --spool " + sp + " --out " + out.string() +
               " --work " + work.string() + " --part-mb 1 > /dev/null"),
            0)
      << stderr_text();
  auto files = files_in(out);
  EXPECT_LE(files.size(), 8u);
  EXPECT_TRUE(files.count("results.tar.gz.0"));
  EXPECT_TRUE(files.count("results.tar.gz.2"));
  EXPECT_FALSE(files.count("results.tar.gz"));
  for (const auto& [name, size] : files) EXPECT_LE(size, 1u << 20) << name;
  ASSERT_EQ(sh("cat " + (out / "results.tar.gz.").string() + "* | tar tzf - > " + (dir_ / "l.txt").string()), 0);
  EXPECT_NE(slurp(dir_ / "l.txt").find("noise.bin"), std::string::npos);
}

TEST_F(Capture, GpuCheckRefusesBadSettings) {
  const std::string run = "bash " + kTools + "/run.sh --python " + kPy;
  EXPECT_EQ(sh(run + " --iterations many --print-config"), 2);
  EXPECT_EQ(sh(run + " --budget 1.5X --print-config"), 2);
  EXPECT_EQ(sh(run + " --runs base,turbo --print-config"), 2);
  EXPECT_EQ(sh(run + " --part-mb 16 --print-config"), 2);
  EXPECT_EQ(sh(run + " --frobnicate"), 2);
  // Without a GPU (the real trainer's probe fails: no torch, or no device) the check says so, exit 1.
  const fs::path out = dir_ / "out";
  EXPECT_EQ(sh(run + " --lib " + CDMA_CAPTURE_LIB + " --out " + out.string() + " --work " + (dir_ / "w").string() +
               " > " + (dir_ / "o.txt").string()),
            1);
  EXPECT_NE(slurp(dir_ / "o.txt").find("usable GPU"), std::string::npos) << slurp(dir_ / "o.txt");
  expect_small_output(out);
  // A missing interposer names the build step.
  EXPECT_EQ(sh(run + " --lib /nonexistent/libcdma_capture.so --out " + out.string() + " --work " +
               (dir_ / "w2").string() + " > " + (dir_ / "o2.txt").string()),
            1);
  EXPECT_NE(slurp(dir_ / "o2.txt").find("scripts/build-capture.sh"), std::string::npos) << slurp(dir_ / "o2.txt");
}

// scripts/build-capture.sh: a build tree of its own with only the interposer at the path run.sh
// looks first, checked; its check refuses a library that needs a newer glibc.
TEST_F(Capture, BuildCaptureScriptMakesAPreloadableLibrary) {
  const std::string script = std::string(CDMA_SOURCE_DIR) + "/scripts/build-capture.sh";
  const fs::path bd = dir_ / "build-capture";
  ASSERT_EQ(sh("bash " + script + " --build-dir " + bd.string() + " --jobs 2 > " + (dir_ / "o.txt").string()), 0)
      << stderr_text() << slurp(dir_ / "o.txt");
  const std::string text = slurp(dir_ / "o.txt");
  EXPECT_TRUE(fs::exists(bd / "lib" / "libcdma_capture.so"));
  EXPECT_NE(text.find("newest glibc symbol version GLIBC_2.2"), std::string::npos) << text;
  EXPECT_NE(text.find("Carry to the GPU machine"), std::string::npos) << text;
  EXPECT_NE(text.find((bd / "lib" / "libcdma_capture.so").string()), std::string::npos) << text;
  // The check alone, on a library that calls arc4random without the floor.
  std::ofstream(dir_ / "new.c") << "#include <stdlib.h>\nunsigned f(void) { return arc4random(); }\n";
  ASSERT_EQ(sh("cc -shared -fPIC -o " + (dir_ / "libnew.so").string() + " " + (dir_ / "new.c").string()), 0)
      << stderr_text();
  EXPECT_EQ(sh("bash " + script + " --check " + (dir_ / "libnew.so").string()), 1);
  EXPECT_NE(stderr_text().find("arc4random@GLIBC_2.36"), std::string::npos) << stderr_text();
}

// The preloaded library's DT_NEEDED: libc and its libdl/libpthread (empty stubs since glibc 2.34,
// where glibc before 2.34 defines dlopen and pthread_*), nothing else.
TEST_F(Capture, InterposerBringsNoCudaCudnnCuptiOrHdf5) {
  ASSERT_EQ(sh(std::string("readelf -d ") + CDMA_CAPTURE_LIB + " > " + (dir_ / "dyn.txt").string()), 0);
  std::ifstream f(dir_ / "dyn.txt");
  std::set<std::string> needed;
  std::regex re(R"(\(NEEDED\).*\[(.*)\])");
  for (std::string line; std::getline(f, line);) {
    std::smatch m;
    if (std::regex_search(line, m, re)) needed.insert(m[1]);
  }
  EXPECT_TRUE(needed.count("libc.so.6"));
  for (const auto& lib : needed)
    EXPECT_TRUE(lib == "libc.so.6" || lib == "libdl.so.2" || lib == "libpthread.so.0" || lib.rfind("ld-linux", 0) == 0)
        << lib << " is a DT_NEEDED of the interposer";
}

// No symbol version newer than GLIBC_2.28 (RHEL 8, manylinux_2_28): `objdump -T`, as the issue
// asks; the interposer and the test library linked the same way.
TEST_F(Capture, InterposerNeedsNoGlibcNewerThan228) {
  for (const std::string& lib : {std::string(CDMA_CAPTURE_LIB), std::string(CDMA_GLIBC_COMPAT_PROBE)}) {
    ASSERT_EQ(sh("objdump -T " + lib + " > " + (dir_ / "dynsym.txt").string()), 0) << lib;
    const std::string text = slurp(dir_ / "dynsym.txt");
    std::regex re(R"(GLIBC_(\d+)\.(\d+)(\.\d+)?\)?\s+(\S+))");
    int versions = 0;
    std::string newer;
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
      ++versions;
      int major = std::stoi((*it)[1]), minor = std::stoi((*it)[2]);
      if (major > 2 || (major == 2 && minor > 28)) newer += " " + (*it)[4].str() + "@" + (*it)[0].str();
    }
    EXPECT_GT(versions, 10) << "no GLIBC_ versions found in objdump -T " << lib;
    EXPECT_TRUE(newer.empty()) << lib << " needs glibc newer than 2.28:" << newer;
  }
}

// The shims behind that floor work: exceptions unwind (_dl_find_object), timed waits time out
// (pthread_cond_clockwait), threads run, std::random_device("arc4random") works.
TEST_F(Capture, GlibcShimsWork) {
  void* h = dlopen(CDMA_GLIBC_COMPAT_PROBE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  using Fn = int (*)(char*, int);
  auto fn = reinterpret_cast<Fn>(dlsym(h, "cdma_glibc_compat_probe"));
  ASSERT_NE(fn, nullptr);
  char msg[256] = "not run";
  EXPECT_EQ(fn(msg, sizeof msg), 0) << msg;
}

}  // namespace
