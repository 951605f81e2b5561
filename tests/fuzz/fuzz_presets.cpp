// Fuzz target: arbitrary bytes as one of the hardware model's preset files. Byte 0 picks the file
// (gpus.json, links.json, engines.json; % 3), the rest is its content; the other two files are the
// shipped ones. PresetCatalog::load must either succeed with values inside the ranges it promises
// (presets.hpp) or throw ModelError; anything else (another exception, a crash) aborts.
#include <cdma/hwmodel/presets.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {
bool in(double v, double lo, bool lo_ok, double hi) {
  return std::isfinite(v) && (lo_ok ? v >= lo : v > lo) && v <= hi;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path d = fs::path(tmp ? tmp : "/tmp") / ("cdma-fuzz-presets-" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  static const char* kFiles[] = {"gpus.json", "links.json", "engines.json"};
  if (size == 0) return 0;
  const int which = data[0] % 3;
  for (int i = 0; i < 3; ++i) {
    const fs::path to = dir / kFiles[i];
    if (i == which) {
      std::ofstream(to, std::ios::binary | std::ios::trunc)
          .write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
    } else {
      fs::copy_file(fs::path(CDMA_FUZZ_PRESET_DIR) / kFiles[i], to, fs::copy_options::overwrite_existing);
    }
  }
  try {
    const auto c = cdma::hwmodel::PresetCatalog::load(dir);
    for (const auto& g : c.gpus) {
      if (!in(g.dram_gbps, 0, false, 1e6) || !in(g.compute_efficiency, 0, false, 1) ||
          !in(g.dram_efficiency, 0, false, 1) || !g.peak_tflops.count("fp32"))
        std::abort();
      for (const auto& [k, v] : g.peak_tflops)
        if (!in(v, 0, false, 1e6)) std::abort();
    }
    for (const auto& l : c.links)
      if (!in(l.nominal_gbps, 0, false, 1e6) || !in(l.efficiency, 0, false, 1) || !in(l.latency_us, 0, true, 1e6))
        std::abort();
    if (c.engines.read_share_of_dram.size() != 3) std::abort();
    for (const auto& [k, v] : c.engines.read_share_of_dram)
      if (!in(v, 0, false, 1)) std::abort();
  } catch (const cdma::hwmodel::ModelError&) {
  }
  return 0;
}
