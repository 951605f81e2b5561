// Fuzz target: arbitrary bytes as one of the network zoo's files (data/zoo). Byte 0 picks the file:
// even, a network file (loaded with load_zoo_network at batch 1 + byte 0 / 2 % 64); odd, the index
// zoo.json (beside the shipped network files; every name it lists is then loaded). Loading must
// either succeed with a network that keeps the promises of zoo.hpp and network.hpp (layers in
// forward order, each needing an earlier tensor, non-negative sizes) or throw ModelError; anything
// else (another exception, a crash) aborts.
#include <cdma/hwmodel/zoo.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {
void check(const cdma::hwmodel::Network& n) {
  if (n.layers.empty() || n.input_tensor != 0 || n.batch < 1) std::abort();
  for (std::size_t i = 0; i < n.layers.size(); ++i) {
    const auto& l = n.layers[i];
    if (l.x_tensor > static_cast<int>(i) || l.x_tensor < -1 || l.x_bytes < 0) std::abort();
    if (!std::isfinite(l.flops) || l.flops < 0 || !std::isfinite(l.dram_bytes) || l.dram_bytes < 0) std::abort();
    for (auto d : l.out_shape)
      if (d < 1) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path d = fs::path(tmp ? tmp : "/tmp") / ("cdma-fuzz-zoo-" + std::to_string(getpid()));
    fs::create_directories(d);
    for (const auto& f : fs::directory_iterator(CDMA_FUZZ_ZOO_DIR))
      fs::copy_file(f.path(), d / f.path().filename(), fs::copy_options::overwrite_existing);
    return d;
  }();
  if (size == 0) return 0;
  const bool index = data[0] % 2 == 1;
  const fs::path to = dir / (index ? "zoo.json" : "fuzzed.json");
  std::ofstream(to, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data + 1), static_cast<std::streamsize>(size - 1));
  try {
    if (index) {
      const std::string names[] = {"alexnet", "vgg16", "resnet50", "squeezenet1.0", "lenet"};
      for (const auto& n : names) {
        try {
          check(cdma::hwmodel::zoo_network(n, 1, 4, dir));
        } catch (const cdma::hwmodel::ModelError&) {
        }
      }
    } else {
      check(cdma::hwmodel::load_zoo_network(to, 1 + data[0] / 2 % 64, 2));
    }
  } catch (const cdma::hwmodel::ModelError&) {
  }
  if (index) fs::copy_file(fs::path(CDMA_FUZZ_ZOO_DIR) / "zoo.json", to, fs::copy_options::overwrite_existing);
  return 0;
}
